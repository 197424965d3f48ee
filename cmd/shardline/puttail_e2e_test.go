package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/kinesis/localstack"
)

// tailEnvelopes parses tail --json output, one envelope per line.
func tailEnvelopes(t *testing.T, out string) []envelope {
	t.Helper()
	var envs []envelope
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var e envelope
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("tail --json line %q: %v", sc.Text(), err)
		}
		envs = append(envs, e)
	}
	return envs
}

func dataOf(t *testing.T, e envelope) string {
	t.Helper()
	switch {
	case e.Data != nil && e.DataBase64 == nil:
		return *e.Data
	case e.DataBase64 != nil && e.Data == nil:
		b, err := base64.StdEncoding.DecodeString(*e.DataBase64)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Fatalf("envelope %+v: want exactly one of data and data_base64", e)
	return ""
}

// TestPutTail puts a file through the producer and tails it back in every format: the exact
// records in order, raw, as JSON envelopes (text and base64 data), aggregated or not, with
// keys from -k and from a JSON field, and from -n, --at, --after and --shard.
func TestPutTail(t *testing.T) {
	needStack(t)
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 2)
	dir := t.TempDir()

	// One key: every record on one shard, in put order (the producer's ordering is on).
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("record %03d %s", i, strings.Repeat("x", i%7)))
	}
	lines = append(lines, "", "\xff\xfe not utf-8", `{"json": "as text"}`)
	file := filepath.Join(dir, "records.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := cli(t, "", "--local", "put", stream, file, "-k", "one-key").ok(t)
	if !strings.Contains(out, "303 records, 303 delivered, 0 failed") {
		t.Fatalf("put summary: %q", out)
	}

	raw := cli(t, "", "--local", "tail", stream).ok(t)
	if raw != strings.Join(lines, "\n")+"\n" {
		t.Fatalf("tail printed\n%q\nwant the file\n%q", raw, strings.Join(lines, "\n")+"\n")
	}
	envs := tailEnvelopes(t, cli(t, "", "--local", "tail", stream, "--json").ok(t))
	if len(envs) != len(lines) {
		t.Fatalf("tail --json printed %d records, want %d", len(envs), len(lines))
	}
	for i, e := range envs {
		if got := dataOf(t, e); got != lines[i] {
			t.Fatalf("record %d: data %q, want %q", i, got, lines[i])
		}
		if e.Key != "one-key" || e.Shard != envs[0].Shard || e.Sequence == "" || e.Arrival.IsZero() || !e.Aggregated {
			t.Fatalf("record %d: %+v; want key one-key on one shard, aggregated, with sequence and arrival", i, e)
		}
		if i > 0 {
			prev := envs[i-1]
			if c := compareSequence(e.Sequence, prev.Sequence); c < 0 || (c == 0 && e.SubSequence <= prev.SubSequence) {
				t.Fatalf("record %d (%s/%d) is not after record %d (%s/%d)", i, e.Sequence, e.SubSequence, i-1, prev.Sequence, prev.SubSequence)
			}
		}
	}
	if envs[301].DataBase64 == nil || envs[300].Data == nil || *envs[300].Data != "" {
		t.Fatalf("invalid UTF-8 must come as data_base64 and an empty record as data \"\": %+v %+v", envs[300], envs[301])
	}

	// -n, --after and --shard.
	if got := cli(t, "", "--local", "tail", stream, "-n", "5").ok(t); got != strings.Join(lines[:5], "\n")+"\n" {
		t.Fatalf("tail -n 5 printed %q", got)
	}
	after := cli(t, "", "--local", "tail", stream, "--after", envs[0].Sequence, "--shard", envs[0].Shard, "--json").ok(t)
	// Every record of the first aggregate is at or before its sequence number.
	for _, e := range tailEnvelopes(t, after) {
		if e.Sequence == envs[0].Sequence {
			t.Fatalf("tail --after %s printed a record of that sequence number", envs[0].Sequence)
		}
	}

	// --aggregate=false, keys from a JSON field, and --at: only what was put after the time.
	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	var jl []string
	for i := range 40 {
		jl = append(jl, fmt.Sprintf(`{"user":"u%d","n":%d}`, i%4, i))
	}
	out = cli(t, strings.Join(jl, "\n"), "--local", "put", stream, "--key-field", "user", "--aggregate=false", "--json").ok(t)
	var sum putSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Records != 40 || sum.Delivered != 40 || sum.Failed != 0 || sum.KinesisRecords != 40 {
		t.Fatalf("put --json: %+v; want 40 records delivered as 40 Kinesis records", sum)
	}
	since := tailEnvelopes(t, cli(t, "", "--local", "tail", stream, "--at", at.Format(time.RFC3339Nano), "--json").ok(t))
	if len(since) != 40 {
		t.Fatalf("tail --at printed %d records, want the 40 put after it", len(since))
	}
	perKey := map[string][]int{}
	for _, e := range since {
		var v struct {
			User string
			N    int
		}
		if err := json.Unmarshal([]byte(dataOf(t, e)), &v); err != nil {
			t.Fatal(err)
		}
		if e.Key != v.User || e.Aggregated {
			t.Fatalf("%+v: want key %s, not aggregated", e, v.User)
		}
		perKey[v.User] = append(perKey[v.User], v.N)
	}
	for k, ns := range perKey {
		for i := 1; i < len(ns); i++ {
			if ns[i] <= ns[i-1] {
				t.Fatalf("key %s out of order: %v", k, ns)
			}
		}
	}
}

// TestTailFollow: -f keeps reading and prints records put while it runs; -n ends it.
func TestTailFollow(t *testing.T) {
	needStack(t)
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 2)
	done := make(chan result, 1)
	go func() { done <- cli(t, "", "--local", "tail", stream, "--from", "latest", "-f", "-n", "10") }()
	time.Sleep(2 * time.Second) // the iterators are taken at LATEST before the records arrive
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("late %d", i))
	}
	cli(t, strings.Join(lines, "\n"), "--local", "put", stream, "-k", "k").ok(t)
	select {
	case r := <-done:
		if got := r.ok(t); got != strings.Join(lines, "\n")+"\n" {
			t.Fatalf("tail -f printed %q", got)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("tail -f -n 10 did not end after 10 records")
	}
}
