package metrics

import "testing"

// benchLabels is what a consumer passes per shard: two labels set, two empty.
var benchLabels = Labels{Stream: "orders", Shard: "shardId-000000000001"}

// benchCollector keeps calls going through the interface, as producers and consumers make
// them, so the compiler cannot devirtualise or drop them.
var benchCollector Collector

func benchAdd(b *testing.B, c Collector) {
	benchCollector = c
	b.ReportAllocs()
	for b.Loop() {
		benchCollector.Add(ConsumerRecordsReceived, 1, benchLabels)
	}
}

func benchSet(b *testing.B, c Collector) {
	benchCollector = c
	b.ReportAllocs()
	for b.Loop() {
		benchCollector.Set(ConsumerLagRecords, 1, benchLabels)
	}
}

func benchObserve(b *testing.B, c Collector) {
	benchCollector = c
	b.ReportAllocs()
	for b.Loop() {
		benchCollector.Observe(ConsumerProcessingTime, 0.012, benchLabels)
	}
}

func BenchmarkNopAdd(b *testing.B)     { benchAdd(b, Nop{}) }
func BenchmarkNopSet(b *testing.B)     { benchSet(b, Nop{}) }
func BenchmarkNopObserve(b *testing.B) { benchObserve(b, Nop{}) }

func BenchmarkMemoryAdd(b *testing.B)     { benchAdd(b, NewMemory()) }
func BenchmarkMemorySet(b *testing.B)     { benchSet(b, NewMemory()) }
func BenchmarkMemoryObserve(b *testing.B) { benchObserve(b, NewMemory()) }

// BenchmarkMemoryAddParallel measures contention: every goroutine adds to the same series.
func BenchmarkMemoryAddParallel(b *testing.B) {
	var c Collector = NewMemory()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(ConsumerRecordsReceived, 1, benchLabels)
		}
	})
}

// BenchmarkMemorySnapshot measures a read of a collector holding 100 shards' worth of series.
func BenchmarkMemorySnapshot(b *testing.B) {
	m := NewMemory()
	for i := range 100 {
		l := Labels{Stream: "orders", Shard: "shardId-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		m.Add(ConsumerRecordsReceived, 1, l)
		m.Set(ConsumerLagRecords, 1, l)
		for v := range 100 {
			m.Observe(ConsumerProcessingTime, float64(v), l)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Snapshot()
	}
}

// BenchmarkFanout measures a Fanout of two Memory collectors: the cost of both plus dispatch.
func BenchmarkFanout(b *testing.B) { benchAdd(b, Fanout(NewMemory(), NewMemory())) }
