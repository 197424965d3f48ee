package aggregation_test

import (
	"fmt"

	"github.com/shardline/kinesis/aggregation"
)

// Build an aggregate from a few user records, then read it back as a consumer would.
func Example() {
	b := aggregation.NewBuilder(0)
	b.Add("user-1", "", []byte(`{"event":"login"}`))
	b.Add("user-2", "", []byte(`{"event":"click"}`))
	b.Add("user-1", "170141183460469231731687303715884105728", []byte(`{"event":"logout"}`))
	data := b.AppendTo(nil)
	fmt.Printf("%d user records in %d bytes\n", b.Len(), len(data))

	var p aggregation.Parser
	fmt.Println(p.Parse(data))
	for i := range p.Len() {
		r := p.Record(i)
		fmt.Printf("%d %s %q %s\n", r.SubSequence, r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
	// Output:
	// 3 user records in 149 bytes
	// Aggregated
	// 0 user-1 "" {"event":"login"}
	// 1 user-2 "" {"event":"click"}
	// 2 user-1 "170141183460469231731687303715884105728" {"event":"logout"}
}

// A producer fills an aggregate up to its maximum, sends it when the next record does not fit,
// and reuses the Builder and its output buffer.
func ExampleBuilder_Add() {
	b := aggregation.NewBuilder(120)
	var buf []byte
	send := func() {
		buf = b.AppendTo(buf[:0])
		fmt.Printf("send %d records, %d bytes\n", b.Len(), len(buf))
		b.Reset()
	}
	for i := range 5 {
		key, data := fmt.Sprintf("key-%d", i%2), []byte("twenty bytes of data")
		if !b.Add(key, "", data) {
			send()
			b.Add(key, "", data)
		}
	}
	send()
	// Output:
	// send 3 records, 112 bytes
	// send 2 records, 86 bytes
}

// Plain data, such as a record another producer sent without aggregation, passes through as one
// record; the partition key then comes from the Kinesis record itself.
func ExampleParser_Parse() {
	var p aggregation.Parser
	for _, data := range [][]byte{
		[]byte("not aggregated"),
		append(aggregation.Magic[:], make([]byte, 20)...), // magic, but the digest does not match
	} {
		f := p.Parse(data)
		fmt.Println(f, p.Len(), p.Record(0).PartitionKey == nil, len(p.Record(0).Data))
	}
	// Output:
	// Plain 1 true 14
	// Plain 1 true 24
}
