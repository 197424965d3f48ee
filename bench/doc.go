// Package bench compares Shardline with the Go libraries its users would otherwise pick:
// github.com/a8m/kinesis-producer for producing and github.com/harlow/kinesis-consumer for
// consuming. It is a separate module so that the peers never enter Shardline's own
// dependency graph.
//
// The comparison program is cmd/compare (see README.md); the benchmarks in this package run
// the same comparisons against the in-process fake endpoint:
//
//	go test -run '^$' -bench . -benchtime 1x
//
// Subpackages: fake (the in-memory Kinesis endpoint), workload (the records and their
// checks), hashkey (shard placement), measure (CPU, wall time and allocations) and compare
// (the runners and the tables).
package bench
