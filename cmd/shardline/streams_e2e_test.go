package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shardline/kinesis/localstack"
)

// TestStreamLifecycle creates, describes, reshards and deletes a stream with the binary, as
// a user would, and checks the JSON of each step and the human describe against a golden file.
func TestStreamLifecycle(t *testing.T) {
	needStack(t)
	stream := localstack.UniqueName(t, "shardline-")
	t.Cleanup(func() { cli(t, "", "--local", "delete", stream) })

	if out := cli(t, "", "--local", "create", stream, "--shards", "1").ok(t); !strings.Contains(out, "created stream "+stream+" with 1 shards") {
		t.Fatalf("create said %q", out)
	}
	if out := cli(t, "", "--local", "streams").ok(t); !strings.Contains(out, stream) {
		t.Fatalf("streams does not list %s:\n%s", stream, out)
	}
	var names []streamRow
	if err := json.Unmarshal([]byte(cli(t, "", "--local", "streams", "--json").ok(t)), &names); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n.Name == stream
	}
	if !found {
		t.Fatalf("streams --json lacks %s: %+v", stream, names)
	}

	// UpdateShardCount: the shard closes, two children share its range.
	out := cli(t, "", "--local", "reshard", stream, "--shards", "2").ok(t)
	if !strings.Contains(out, "2 open shards") {
		t.Fatalf("reshard --shards 2 said %q", out)
	}
	golden(t, "describe", cli(t, "", "--local", "describe", stream).ok(t))

	// Split a child, then merge the split's two children back.
	cli(t, "", "--local", "reshard", stream, "--split", "shardId-000000000001").ok(t)
	d := describeJSON(t, stream)
	if d.OpenShards != 3 || d.ClosedShards != 2 || d.Status != "ACTIVE" || d.RetentionHours != 24 {
		t.Fatalf("after split: %d open, %d closed, status %s, retention %d; want 3, 2, ACTIVE, 24", d.OpenShards, d.ClosedShards, d.Status, d.RetentionHours)
	}
	var kids []string
	for _, s := range d.Shards {
		if s.Parent == "shardId-000000000001" {
			kids = append(kids, s.ID)
			if !s.Open || s.HashStart == "" || s.HashEnd == "" {
				t.Errorf("child %+v: want open with a hash range", s)
			}
		}
		if s.ID == "shardId-000000000001" && (s.Open || s.SequenceEnd == "") {
			t.Errorf("parent %+v: want closed with an ending sequence number", s)
		}
	}
	if len(kids) != 2 {
		t.Fatalf("%d children of the split shard, want 2: %+v", len(kids), d.Shards)
	}
	out = cli(t, "", "--local", "reshard", stream, "--merge", kids[0], kids[1], "--json").ok(t)
	var merged struct {
		OpenShards []shardRow `json:"open_shards"`
	}
	if err := json.Unmarshal([]byte(out), &merged); err != nil {
		t.Fatal(err)
	}
	if len(merged.OpenShards) != 2 {
		t.Fatalf("after merge %d open shards, want 2: %s", len(merged.OpenShards), out)
	}
	var mergedChild shardRow
	for _, s := range describeJSON(t, stream).Shards {
		if s.Open && s.AdjacentParent != "" {
			mergedChild = s
		}
	}
	if got := []string{mergedChild.Parent, mergedChild.AdjacentParent}; !(got[0] == kids[0] && got[1] == kids[1]) {
		t.Fatalf("merged shard's parents %v, want %v", got, kids)
	}

	cli(t, "", "--local", "delete", stream).ok(t)
	r := cli(t, "", "--local", "describe", stream)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("describe of a deleted stream: exit %d, stderr %q; want 1 and not found", r.code, r.stderr)
	}
}

func describeJSON(t *testing.T, stream string) description {
	t.Helper()
	var d description
	if err := json.Unmarshal([]byte(cli(t, "", "--local", "describe", stream, "--json").ok(t)), &d); err != nil {
		t.Fatal(err)
	}
	return d
}
