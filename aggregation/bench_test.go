package aggregation

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
)

// Benchmarks model the producer and consumer hot paths: ~20-byte partition keys drawn from 1000
// distinct values, aggregates of up to 50 KiB, a reused Builder, Parser and output buffer. Build
// benchmarks count one op per user record (ns/op and allocs/op are per record, MD5 and AppendTo
// included); parse benchmarks count one op per aggregate and report ns/record and allocs/record.

const benchAggregateMax = 50 << 10

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("customer-%011d", i*7919) // 20 bytes
	}
	return keys
}

// benchOrder is a fixed pseudo-random sequence of key indices (a power-of-two length).
func benchOrder(nKeys int) []uint16 {
	rng := rand.New(rand.NewPCG(7, 11))
	order := make([]uint16, 1<<16)
	for i := range order {
		order[i] = uint16(rng.IntN(nKeys))
	}
	return order
}

func benchmarkBuild(b *testing.B, recordSize int, withEHK bool) {
	keys := benchKeys(1000)
	ehks := make([]string, len(keys))
	if withEHK {
		for i := range ehks {
			ehks[i] = fmt.Sprintf("%039d", uint64(i)*18446744073709551557)
		}
	}
	order := benchOrder(len(keys))
	data := patterned(1, recordSize)
	bld := NewBuilder(benchAggregateMax)
	var buf []byte
	i, aggregates := 0, 0
	add := func() {
		k := order[i&(len(order)-1)]
		i++
		if !bld.Add(keys[k], ehks[k], data) {
			buf = bld.AppendTo(buf[:0])
			bld.Reset()
			aggregates++
			bld.Add(keys[k], ehks[k], data)
		}
	}
	for range 20000 { // warm-up: grow the buffers and key maps to their working size
		add()
	}
	i, aggregates = 0, 0
	b.SetBytes(int64(recordSize))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		add()
	}
	cpu.report(b, float64(b.N), "cpu-ns/op")
	if aggregates > 0 {
		b.ReportMetric(float64(i)/float64(aggregates), "records/aggregate")
	}
}

func BenchmarkBuild100B(b *testing.B)        { benchmarkBuild(b, 100, false) }
func BenchmarkBuild1KiB(b *testing.B)        { benchmarkBuild(b, 1024, false) }
func BenchmarkBuild100BWithEHK(b *testing.B) { benchmarkBuild(b, 100, true) }

// benchAggregate builds one full aggregate (up to 50 KiB) of recordSize-byte records and returns
// it with its record count.
func benchAggregate(b *testing.B, recordSize int) ([]byte, int) {
	keys := benchKeys(1000)
	order := benchOrder(len(keys))
	data := patterned(2, recordSize)
	bld := NewBuilder(benchAggregateMax)
	for i := 0; bld.Add(keys[order[i]], "", data); {
		i++
	}
	return bld.AppendTo(nil), bld.Len()
}

// cpuClock measures the process CPU time of a benchmark loop (see processCPUTime).
type cpuClock struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuClock {
	t, ok := processCPUTime()
	return cpuClock{t, ok}
}

// report adds the CPU time used since startCPU, divided by n, as the named metric.
func (c cpuClock) report(b *testing.B, n float64, unit string) {
	if end, ok := processCPUTime(); ok && c.ok {
		b.ReportMetric(float64((end-c.start).Nanoseconds())/n, unit)
	}
}

// perRecord runs op once per b.Loop iteration and reports time and allocations per user record,
// given that one op handles n records.
func perRecord(b *testing.B, n int, op func()) {
	op() // warm-up
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu := startCPU()
	for b.Loop() {
		op()
	}
	runtime.ReadMemStats(&after)
	records := float64(b.N) * float64(n)
	cpu.report(b, records, "cpu-ns/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
	b.ReportMetric(float64(n), "records/op")
}

func benchmarkParseAggregated(b *testing.B, recordSize int) {
	agg, n := benchAggregate(b, recordSize)
	var p Parser
	b.SetBytes(int64(len(agg)))
	sink := 0
	perRecord(b, n, func() {
		if p.Parse(agg) != Aggregated || p.Len() != n {
			b.Fatal("benchmark aggregate did not parse")
		}
		for i := range p.Len() {
			r := p.Record(i)
			sink += len(r.PartitionKey) + len(r.Data)
		}
	})
	_ = sink
}

func BenchmarkParseAggregated100B(b *testing.B) { benchmarkParseAggregated(b, 100) }
func BenchmarkParseAggregated1KiB(b *testing.B) { benchmarkParseAggregated(b, 1024) }

// BenchmarkParsePlain is the cost for a record that is not aggregated (no magic): the consumer
// pays it on every record of a stream written without aggregation.
func BenchmarkParsePlain(b *testing.B) {
	data := patterned(3, 100)
	var p Parser
	b.ReportAllocs()
	sink := 0
	cpu := startCPU()
	for b.Loop() {
		if p.Parse(data) != Plain {
			b.Fatal("not plain")
		}
		sink += len(p.Record(0).Data)
	}
	cpu.report(b, float64(b.N), "cpu-ns/op")
	_ = sink
}

// BenchmarkMD5Floor100B/1KiB hash the same protobuf bytes the parse benchmarks verify: the floor
// for both building and parsing, which must compute this digest.
func BenchmarkMD5Floor100B(b *testing.B) { benchmarkMD5Floor(b, 100) }
func BenchmarkMD5Floor1KiB(b *testing.B) { benchmarkMD5Floor(b, 1024) }

func benchmarkMD5Floor(b *testing.B, recordSize int) {
	agg, n := benchAggregate(b, recordSize)
	b.SetBytes(int64(len(agg)))
	var sink byte
	perRecord(b, n, func() {
		sum := md5.Sum(agg[magicLen : len(agg)-digestLen])
		sink ^= sum[0]
	})
	_ = sink
}

// BenchmarkAWSDeaggregator100B/1KiB run the AWS reference deaggregator on the same aggregates,
// for comparison.
func BenchmarkAWSDeaggregator100B(b *testing.B) { benchmarkAWSDeaggregator(b, 100) }
func BenchmarkAWSDeaggregator1KiB(b *testing.B) { benchmarkAWSDeaggregator(b, 1024) }

func benchmarkAWSDeaggregator(b *testing.B, recordSize int) {
	agg, n := benchAggregate(b, recordSize)
	in := []types.Record{{Data: agg, PartitionKey: aws.String("outer"), SequenceNumber: aws.String("1")}}
	b.SetBytes(int64(len(agg)))
	perRecord(b, n, func() {
		out, err := deaggregator.DeaggregateRecords(in)
		if err != nil || len(out) != n {
			b.Fatalf("AWS deaggregator: %d records, %v", len(out), err)
		}
	})
}

// BenchmarkAWSDeaggregatorPlain is the reference cost of a plain record, next to
// BenchmarkParsePlain.
func BenchmarkAWSDeaggregatorPlain(b *testing.B) {
	in := []types.Record{{Data: patterned(3, 100), PartitionKey: aws.String("outer"), SequenceNumber: aws.String("1")}}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if out, err := deaggregator.DeaggregateRecords(in); err != nil || len(out) != 1 {
			b.Fatal("AWS deaggregator failed")
		}
	}
	cpu.report(b, float64(b.N), "cpu-ns/op")
}
