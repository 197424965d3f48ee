package aggregation

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	awsrecords "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// The AWS reference implementation (awslabs/kinesis-aggregation, Go v2) is the oracle here: its
// deaggregator and its generated protobuf types for the KPL messages. That module version has no
// aggregator package, so reference aggregates are made by marshalling its types.

// interopRecords mixes everything the format carries: shared and distinct partition keys, explicit
// hash keys shared and not, empty data, 256-byte keys, and data sizes at varint boundaries.
func interopRecords() []userRecord {
	var recs []userRecord
	for i := range 300 {
		r := userRecord{pk: key("user", i%41, 20), data: patterned(i, i%200)}
		switch i % 5 {
		case 0:
			r.ehk = fmt.Sprint(uint64(i) * 1_000_000_007)
		case 1:
			r.ehk = "340282366920938463463374607431768211455"
		}
		recs = append(recs, r)
	}
	recs = append(recs,
		userRecord{pk: strings.Repeat("p", 256), ehk: strings.Repeat("1", 38), data: nil},
		userRecord{pk: "ünïcödé-kéy", data: patterned(1, 127)},
		userRecord{pk: "b128", data: patterned(2, 128)},
		userRecord{pk: "b16383", data: patterned(3, 16383)},
		userRecord{pk: "b16384", data: patterned(4, 16384)},
	)
	return recs
}

// referenceMessage is what the reference protobuf types hold for recs, with tables in order of
// first use (the order the Builder assigns indices in).
func referenceMessage(recs []userRecord) *awsrecords.AggregatedRecord {
	msg := &awsrecords.AggregatedRecord{}
	pks, ehks := map[string]uint64{}, map[string]uint64{}
	for _, r := range recs {
		pi, ok := pks[r.pk]
		if !ok {
			pi = uint64(len(pks))
			pks[r.pk] = pi
			msg.PartitionKeyTable = append(msg.PartitionKeyTable, r.pk)
		}
		rec := &awsrecords.Record{PartitionKeyIndex: proto.Uint64(pi), Data: append([]byte{}, r.data...)}
		if r.ehk != "" {
			ei, ok := ehks[r.ehk]
			if !ok {
				ei = uint64(len(ehks))
				ehks[r.ehk] = ei
				msg.ExplicitHashKeyTable = append(msg.ExplicitHashKeyTable, r.ehk)
			}
			rec.ExplicitHashKeyIndex = proto.Uint64(ei)
		}
		msg.Records = append(msg.Records, rec)
	}
	return msg
}

// Guards against anything a KCL-style reader could trip on in what the Builder writes: the AWS
// deaggregator must return every user record with its partition key and data, in order.
func TestInteropAWSDeaggregatorReadsBuilder(t *testing.T) {
	recs := interopRecords()
	out := build(t, 0, recs)
	got, err := deaggregator.DeaggregateRecords([]types.Record{{
		Data: out, PartitionKey: aws.String("outer"), SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898"),
	}})
	if err != nil {
		t.Fatalf("DeaggregateRecords: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("AWS deaggregator returned %d records, want %d (it returns the input as-is when it does not recognise an aggregate)", len(got), len(recs))
	}
	for i, r := range recs {
		if aws.ToString(got[i].PartitionKey) != r.pk || !bytes.Equal(got[i].Data, r.data) {
			t.Fatalf("record %d: AWS deaggregator read pk %q, %d bytes; want %v", i, short(aws.ToString(got[i].PartitionKey)), len(got[i].Data), r)
		}
	}
}

// Guards against explicit hash keys (which the AWS deaggregator does not return) being encoded
// wrongly, and against any encoding difference from the reference marshaller: the Builder must
// write exactly the bytes protobuf writes for the same message, and those bytes must unmarshal into
// the reference types with every table and index intact.
func TestInteropBuilderMatchesReferenceEncoding(t *testing.T) {
	recs := interopRecords()
	out := build(t, 0, recs)
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(protoadapt.MessageV2Of(referenceMessage(recs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, frame(want)) {
		t.Fatalf("Builder output (%d bytes) differs from magic+proto.Marshal+MD5 (%d bytes)", len(out), len(want)+overheadLen)
	}

	var msg awsrecords.AggregatedRecord
	if err := proto.Unmarshal(out[len(Magic):len(out)-16], protoadapt.MessageV2Of(&msg)); err != nil {
		t.Fatalf("reference types cannot unmarshal the Builder's message: %v", err)
	}
	if len(msg.Records) != len(recs) {
		t.Fatalf("reference unmarshal found %d records, want %d", len(msg.Records), len(recs))
	}
	for i, r := range recs {
		m := msg.Records[i]
		if msg.PartitionKeyTable[m.GetPartitionKeyIndex()] != r.pk || !bytes.Equal(m.Data, r.data) {
			t.Fatalf("record %d: reference unmarshal disagrees on key or data", i)
		}
		gotEHK := ""
		if m.ExplicitHashKeyIndex != nil {
			gotEHK = msg.ExplicitHashKeyTable[m.GetExplicitHashKeyIndex()]
			if r.ehk == "" {
				t.Fatalf("record %d: explicit hash key index set for a record without one", i)
			}
		}
		if gotEHK != r.ehk {
			t.Fatalf("record %d: explicit hash key %q, want %q", i, gotEHK, r.ehk)
		}
	}
}

// Guards against the Parser misreading aggregates written by the reference protobuf code,
// including tags (which the KPL writes when asked and we never do) and a table entry nobody uses.
func TestInteropParserReadsReference(t *testing.T) {
	recs := interopRecords()
	msg := referenceMessage(recs)
	msg.PartitionKeyTable = append(msg.PartitionKeyTable, "unused")
	for i, r := range msg.Records {
		if i%7 == 0 {
			r.Tags = []*awsrecords.Tag{{Key: proto.String("app"), Value: proto.String(fmt.Sprint(i))}, {Key: proto.String("bare")}}
		}
	}
	body, err := proto.Marshal(protoadapt.MessageV2Of(msg))
	if err != nil {
		t.Fatal(err)
	}
	data := frame(body)
	var p Parser
	f, got := parseAll(&p, data)
	if f != Aggregated {
		t.Fatalf("Parse = %v (%v), want Aggregated", f, p.Err())
	}
	checkRecords(t, got, recs)

	// The AWS deaggregator reads the same bytes the same way (keys and data).
	ref, err := deaggregator.DeaggregateRecords([]types.Record{{Data: data, PartitionKey: aws.String("outer")}})
	if err != nil || len(ref) != len(got) {
		t.Fatalf("AWS deaggregator: %d records, err %v", len(ref), err)
	}
	for i := range ref {
		if aws.ToString(ref[i].PartitionKey) != string(got[i].PartitionKey) || !bytes.Equal(ref[i].Data, got[i].Data) {
			t.Fatalf("record %d: Parser and AWS deaggregator disagree", i)
		}
	}
}

// Guards against the Parser and the AWS deaggregator disagreeing on what is plain: short data,
// non-aggregates and aggregates with a bad digest all pass through whole in both.
func TestInteropPlainPassThrough(t *testing.T) {
	agg := build(t, 0, []userRecord{{pk: "a", data: []byte("1")}, {pk: "b", data: []byte("2")}})
	badDigest := bytes.Clone(agg)
	badDigest[len(badDigest)-5] ^= 0x40
	inputs := [][]byte{[]byte("plain json {}"), Magic[:], append(Magic[:len(Magic):len(Magic)], make([]byte, 17)...), badDigest, agg}
	var kin []types.Record
	var want []Record
	var p Parser
	for _, in := range inputs {
		kin = append(kin, types.Record{Data: in, PartitionKey: aws.String("outer")})
		_, recs := parseAll(&p, in)
		want = append(want, recs...)
	}
	got, err := deaggregator.DeaggregateRecords(kin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("AWS deaggregator: %d records, Parser: %d", len(got), len(want))
	}
	for i, w := range want {
		wantPK := "outer" // a plain record keeps the Kinesis record's key
		if w.PartitionKey != nil {
			wantPK = string(w.PartitionKey)
		}
		if aws.ToString(got[i].PartitionKey) != wantPK || !bytes.Equal(got[i].Data, w.Data) {
			t.Fatalf("record %d: AWS deaggregator (%q, %x) and Parser (%q, %x) disagree", i, aws.ToString(got[i].PartitionKey), got[i].Data, wantPK, w.Data)
		}
	}
}
