// Package aggregation builds, sizes, parses and verifies KPL aggregated records: many user records
// packed into the data of one Kinesis record, in the format of the Kinesis Producer Library, read
// by the KCL and the AWS deaggregation libraries.
//
// Building, on the producer side:
//
//	b := aggregation.NewBuilder(aggregation.DefaultMaxSize - 256) // room for the aggregate's own key
//	var buf []byte
//	for _, r := range userRecords {
//		if !b.Add(r.PartitionKey, r.ExplicitHashKey, r.Data) {
//			buf = b.AppendTo(buf[:0]) // full: send buf as one Kinesis record, then start over
//			send(buf)
//			b.Reset()
//			if !b.Add(r.PartitionKey, r.ExplicitHashKey, r.Data) {
//				sendPlain(r) // too large to aggregate even alone
//			}
//		}
//	}
//
// Parsing, on the consumer side:
//
//	var p aggregation.Parser
//	switch p.Parse(kinesisRecord.Data) {
//	case aggregation.Plain, aggregation.Aggregated:
//		for i := range p.Len() {
//			r := p.Record(i) // r.PartitionKey is nil for a plain record: use the Kinesis record's
//			handle(r)
//		}
//	case aggregation.Malformed:
//		// p.Err() says why; p.Record(0) holds the whole data to pass through if policy says so.
//	}
//
// # Wire format
//
// The data of an aggregated Kinesis record is
//
//	F3 89 9A C2 | AggregatedRecord (protobuf) | MD5(AggregatedRecord bytes), 16 bytes
//
// with these proto2 messages (the KPL's messages.proto):
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag {
//	  required string key   = 1;
//	  optional string value = 2;
//	}
//
// Each user record refers to its partition key (and optional explicit hash key) by index into the
// tables, so a key shared by many records is stored once. A user record's position is the
// Kinesis record's sequence number plus its index in records, the sub-sequence number.
//
// [Builder] writes fields in field-number order (both tables, then the records), de-duplicates
// keys by value, never writes tags, and counts every byte, varint growth included, so that
// [Builder.Add] can promise never to exceed the maximum size. [Parser] follows the KCL: data
// without the magic, too short for magic and digest, or whose digest does not match is [Plain] and
// passes through whole; data whose digest matches is an aggregate, and is [Malformed] if its
// message does not parse, lacks a required field or refers to a missing table entry. The parser
// accepts fields in any order, skips tags and unknown fields, and returns sub-slices of its input
// without copying.
//
// Kinesis routes the aggregated record by its own partition key or explicit hash key (the KPL uses
// the first user record's); the user records inside keep their own keys in the tables but are
// stored on the shard the aggregate went to. The KCL checks each user record's hash key against
// the hash-key range of the shard it reads and discards records outside it, so a producer must only
// aggregate records that map to the same shard. Choosing them is the producer's business; this
// package only encodes and decodes.
package aggregation
