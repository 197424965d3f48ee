// Package kinesisproxy is a Kinesis limits-and-faults proxy: it sits between any Kinesis
// client and any Kinesis endpoint (kinesis-mock, kinesalite, LocalStack, AWS) and makes the
// local engines behave like the service under load and under failure, which none of them
// does on its own.
//
//	p, err := kinesisproxy.Start(ctx, kinesisproxy.Config{
//		Upstream: "http://127.0.0.1:4566",
//		Limits:   kinesisproxy.DefaultLimits(),
//		Faults: []kinesisproxy.Fault{
//			{Op: "PutRecords", Kind: kinesisproxy.EntryInternalFailure, Rate: 0.01},
//		},
//	})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//	client := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(p.URL()) })
//
// The program localstack/cmd/kinesis-proxy runs the same proxy from the command line.
//
// # Limits
//
// With Config.Limits enabled each shard gets the service's token buckets (burst: one second
// of tokens). PutRecords entries are routed to shards the way Kinesis routes them (MD5 of
// the partition key, or the explicit hash key) over a shard map listed from the upstream
// with ListShards; entries beyond a shard's limits are answered
// ProvisionedThroughputExceededException per entry, as Kinesis answers them, and only the
// rest is forwarded. A throttled PutRecord or GetRecords call is answered HTTP 400 with that
// error type. The map is listed again when an entry's hash has no open shard, when the
// upstream puts a record on a shard the map did not predict (a reshard), and after 30 s.
//
// GetShardIterator and GetRecords responses carry the proxy's own iterators
// ("kpx1|stream|shard|upstream-iterator"), so that each GetRecords call can be charged to
// its shard; the proxy hands the upstream its own iterator back. An iterator the proxy did
// not make passes unlimited. GetRecords bytes are charged after the call, as Kinesis does:
// a large read leaves the shard owing bytes and refusing reads until it has repaid them.
//
// # Faults
//
// See Fault and FaultKind: per-entry InternalFailure, HTTP 500 and 503 with Kinesis error
// bodies, TCP resets, each before forwarding or after it (the upstream did the work, the
// client sees a failure), added latency with jitter, and blackouts that fail or hold every
// call for a window. Each applies at a rate, within a window, to one operation or all.
// Every draw comes from one random source seeded by Config.Seed, so a serial client sees
// the same faults on every run.
//
// # Protocol
//
// The proxy reads the JSON 1.1 protocol that the Go, Python, JavaScript and .NET SDKs speak.
// CBOR calls (the Java SDKs' default: -Daws.cborEnabled=false turns it off in v2,
// AWS_CBOR_DISABLE=1 in v1) are relayed with call-level faults but without limits or entry
// faults, and counted as Unscanned. Other operations are relayed as streams, event streams included.
//
// # Signatures
//
// Without Config.Resign the client's SigV4 headers are forwarded as they are. The local
// engines do not verify signatures, so rewritten bodies pass; LocalStack still reads the
// account from the access key. AWS does verify them, against its own host name, so an AWS
// upstream needs Config.Resign: every forwarded request is then signed anew with the given
// credentials.
//
// # Endpoints
//
// Kinesis calls are POST / with X-Amz-Target; GET /_proxy/counters returns Counters as
// JSON. A Config.SummaryEvery interval logs one summary line per interval.
package kinesisproxy
