package main

import (
	"context"
	"strings"
	"testing"

	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// TestGroupOnDynamoDB runs the group commands against a DynamoDB store: seek sets and clears
// positions through conditional writes, status and tail --group read them, delete removes them.
func TestGroupOnDynamoDB(t *testing.T) {
	needStack(t)
	kin := localstack.Kinesis(t)
	ddb := localstack.DynamoDB(t)
	stream := localstack.NewStream(t, kin, 1)
	table := localstack.NewTable(t, ddb, func(ctx context.Context, name string) error { return ddbstore.CreateTable(ctx, ddb, name) })
	store := "dynamodb://" + table
	lines := "one\ntwo\nthree\n"
	cli(t, lines, "--local", "put", stream, "-k", "k").ok(t)
	group := []string{"--group", "g", "--store", store}

	cli(t, "", append([]string{"--local", "group", "seek", stream, "--to", "latest"}, group...)...).ok(t)
	gs := statusJSON(t, append([]string{"--local", "group", "status", stream}, group...)...)
	if !gs.CaughtUp || len(gs.Shards) != 1 || gs.Shards[0].Checkpoint.SubSequenceNumber != 2 || !gs.Shards[0].HasRow {
		t.Fatalf("after seek to latest: %+v; want caught up at the third record of the aggregate", gs)
	}
	if out := cli(t, "", append([]string{"--local", "tail", stream}, group...)...).ok(t); out != "" {
		t.Fatalf("tail --group at latest printed %q", out)
	}
	cli(t, "", append([]string{"--local", "group", "seek", stream, "--to", "trim_horizon"}, group...)...).ok(t)
	if out := cli(t, "", append([]string{"--local", "tail", stream}, group...)...).ok(t); out != lines {
		t.Fatalf("tail --group after seek to trim_horizon printed %q, want %q", out, lines)
	}
	cli(t, "", append([]string{"--local", "group", "seek", stream, "--to", "latest"}, group...)...).ok(t)
	if out := cli(t, "", append([]string{"--local", "group", "delete", stream}, group...)...).ok(t); !strings.Contains(out, "1 lease rows") {
		t.Fatalf("group delete said %q", out)
	}
	if gs := statusJSON(t, append([]string{"--local", "group", "status", stream}, group...)...); gs.Shards[0].HasRow {
		t.Fatalf("row left after group delete: %+v", gs.Shards[0])
	}
}
