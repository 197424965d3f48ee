// Command shardline is the command line for Kinesis streams and Shardline consumer groups:
// list and describe streams, create, delete and reshard them for local development, put
// records through Shardline's producer, tail a stream (or a consumer group's position), show a
// group's leases, owners and lag, move a group's position, and read a running worker's
// metrics and health endpoints.
//
//	go install github.com/shardline/kinesis/cmd/shardline@latest
//	shardline --local create orders --shards 2
//	seq 10 | shardline --local put orders
//	shardline --local tail orders --json
//	shardline --local group status orders --group billing --store redis://127.0.0.1:6379/0
//
// AWS settings come from the SDK's own configuration (AWS_REGION, AWS_PROFILE,
// AWS_ENDPOINT_URL_KINESIS and the rest); --region, --profile and --endpoint override them,
// and --local points at the local stack (kinesis-mock on 127.0.0.1:4568, dynalite on 4569).
//
// Every command takes --json. Exit codes: 0 success, 1 failure (an AWS or store error, a
// record that could not be put, an unhealthy endpoint), 2 usage (an unknown command or flag, a
// missing or malformed argument, a destructive command against a remote endpoint without
// --yes).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
