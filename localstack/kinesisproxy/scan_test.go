package kinesisproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shardline/kinesis/internal/shardmap"
)

// A PutRecords body as the Go SDK writes it, plus what other clients add: escapes, an
// explicit hash key, an unknown member, odd whitespace.
const putBody = `{"Records":[{"Data":"aGVsbG8=","PartitionKey":"a"},` +
	` {"Data":"d29ybGQ","PartitionKey":"k\u00e9y","ExplicitHashKey":"42"} ,` +
	`{"PartitionKey":"c","Data":"","Future":{"x":[1,2]}}],"StreamName":"s1","Other":true}`

// Guards against a scanner that misreads entries: wrong sizes would throttle by the wrong
// amount, wrong hashes would charge the wrong shard.
func TestScanPutRecords(t *testing.T) {
	r, err := scanPutRecords([]byte(putBody))
	if err != nil {
		t.Fatal(err)
	}
	if r.stream != (streamRef{name: "s1"}) || len(r.entries) != 3 {
		t.Fatalf("stream %+v, %d entries", r.stream, len(r.entries))
	}
	wantSize := []float64{5 + 1, 5 + 4, 0 + 1} // "kéy" is 4 bytes of UTF-8
	wantHash := []shardmap.Hash{shardmap.HashKey("a"), {Lo: 42}, shardmap.HashKey("c")}
	for i, e := range r.entries {
		if e.size != wantSize[i] || e.hash != wantHash[i] {
			t.Errorf("entry %d: size %v hash %v, want %v %v", i, e.size, e.hash, wantSize[i], wantHash[i])
		}
	}
	// Everything kept: the very same bytes go upstream.
	if got := r.subset([]bool{true, true, true}); !bytes.Equal(got, []byte(putBody)) {
		t.Fatalf("subset(all) changed the body:\n%s", got)
	}
	got := r.subset([]bool{false, true, false})
	want := `{"Records":[{"Data":"d29ybGQ","PartitionKey":"k\u00e9y","ExplicitHashKey":"42"}],"StreamName":"s1","Other":true}`
	if string(got) != want {
		t.Fatalf("subset:\n got %s\nwant %s", got, want)
	}
}

// Guards against limiting a call the upstream would refuse: the proxy must forward those
// whole and let the upstream say what is wrong.
func TestScanPutRecordsRefuses(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `{"StreamName":"s"}`, `{"StreamName":"s","Records":[]}`,
		`{"Records":[{"Data":"AA==","PartitionKey":"a"}]}`,                                         // no stream
		`{"StreamName":"s","Records":[{"Data":"AA=="}]}`,                                           // no key
		`{"StreamName":"s","Records":[{"Data":1,"PartitionKey":"a"}]}`,                             // data not a string
		`{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"a","ExplicitHashKey":"-1"}]}`, // bad hash key
		`{"StreamName":"s","StreamName":"t","Records":[{"Data":"AA==","PartitionKey":"a"}]}`,       // duplicate key
		`{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"a"}]} x`,                      // trailing data
		`{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"a"}]`,                         // truncated
	} {
		if _, err := scanPutRecords([]byte(body)); !errors.Is(err, errScan) {
			t.Errorf("scanPutRecords(%s) = %v, want errScan", body, err)
		}
	}
}

// Guards against merged answers that lose an entry's position, miscount FailedRecordCount or
// rewrite an answer that needed no change (the SDK would still parse it, but the fuzz
// property and byte-exact pass-through would not hold).
func TestMergePutRecords(t *testing.T) {
	const mock = `{"EncryptionType":"NONE","FailedRecordCount":1,"Records":[` +
		`{"ErrorCode":null,"ErrorMessage":null,"SequenceNumber":"1","ShardId":"shardId-000000000001"},` +
		`{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}`
	r, err := scanPutRecordsResponse([]byte(mock))
	if err != nil {
		t.Fatal(err)
	}
	if r.results[0].shardID != "shardId-000000000001" || r.results[0].errorCode != "" || r.results[1].errorCode != "InternalFailure" {
		t.Fatalf("results %+v", r.results)
	}
	if got := r.merge([]outcome{{upstream: 0}, {upstream: 1}}); !bytes.Equal(got, []byte(mock)) {
		t.Fatalf("unchanged merge rewrote the body: %s", got)
	}
	got := r.merge([]outcome{{upstream: -1, code: "ProvisionedThroughputExceededException", message: "m"}, {upstream: 0}, {upstream: 1}})
	want := `{"EncryptionType":"NONE","FailedRecordCount":2,"Records":[` +
		`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"m"},` +
		`{"ErrorCode":null,"ErrorMessage":null,"SequenceNumber":"1","ShardId":"shardId-000000000001"},` +
		`{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}`
	if string(got) != want {
		t.Fatalf("merge:\n got %s\nwant %s", got, want)
	}
	// FailedRecordCount after Records, and missing altogether.
	for _, body := range []string{`{"Records":[{"ShardId":"s"}],"FailedRecordCount":0}`, `{ "Records":[{"ShardId":"s"}]}`} {
		r, err := scanPutRecordsResponse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		got := r.merge([]outcome{{upstream: 0, code: "InternalFailure", message: "Internal service failure."}})
		var v struct {
			FailedRecordCount int
			Records           []struct{ ErrorCode string }
		}
		if err := json.Unmarshal(got, &v); err != nil || v.FailedRecordCount != 1 || len(v.Records) != 1 || v.Records[0].ErrorCode != "InternalFailure" {
			t.Fatalf("merge of %s = %s (%v)", body, got, err)
		}
	}
}

// Guards against iterators that do not survive the round trip or a foreign iterator taken
// for the proxy's (it would be charged to a shard that does not exist).
func TestIterators(t *testing.T) {
	up := "AAAA+/=|with|bars"
	s, sh, u, ok := unwrapIterator(wrapIterator("stream-1", "shardId-000000000002", up))
	if !ok || s != "stream-1" || sh != "shardId-000000000002" || u != up {
		t.Fatalf("round trip = %q %q %q %v", s, sh, u, ok)
	}
	for _, tok := range []string{"", up, "kpx1|", "kpx1|s|", "kpx1||sh|u", "kpx1|s|sh|"} {
		if _, _, _, ok := unwrapIterator(tok); ok {
			t.Errorf("unwrapIterator(%q) accepted a token the proxy never made", tok)
		}
	}

	req := `{"Limit":10,"ShardIterator":"` + wrapIterator("s", "shardId-1", "UP") + `"}`
	out, key, ours, err := unwrapGetRecords([]byte(req))
	if err != nil || !ours || key != (shardKey{"s", "shardId-1"}) || string(out) != `{"Limit":10,"ShardIterator":"UP"}` {
		t.Fatalf("unwrapGetRecords = %s %+v %v %v", out, key, ours, err)
	}
	if out, _, ours, _ := unwrapGetRecords([]byte(`{"ShardIterator":"UP"}`)); ours || string(out) != `{"ShardIterator":"UP"}` {
		t.Fatalf("foreign iterator: %s %v", out, ours)
	}

	resp := `{"Records":[{"Data":"aGVsbG8=","PartitionKey":"ab","SequenceNumber":"1"},{"Data":"AAAA","PartitionKey":"c"}],` +
		`"NextShardIterator":"N","MillisBehindLatest":0}`
	out, size, err := rewriteGetRecords([]byte(resp), shardKey{"s", "shardId-1"})
	if err != nil || size != 5+2+3+1 {
		t.Fatalf("rewriteGetRecords size %v err %v", size, err)
	}
	if want := strings.Replace(resp, `"N"`, `"kpx1|s|shardId-1|N"`, 1); string(out) != want {
		t.Fatalf("rewriteGetRecords:\n got %s\nwant %s", out, want)
	}
	// A closed shard's last response has no next iterator: nothing to wrap.
	end := `{"Records":[],"NextShardIterator":null,"ChildShards":[]}`
	if out, _, err := rewriteGetRecords([]byte(end), shardKey{"s", "x"}); err != nil || string(out) != end {
		t.Fatalf("shard end: %s %v", out, err)
	}
}

// FuzzRewritePutRecords feeds arbitrary request and response bodies to the PutRecords
// scanners. Properties: no panic; an unreadable request is refused with errScan; the
// forwarded subset holds exactly the kept entries, byte for byte, and is the request itself
// when everything is kept; the merged answer has one result per request entry, in order,
// with FailedRecordCount equal to its failed entries, and is the upstream's answer itself
// when nothing was throttled or failed.
func FuzzRewritePutRecords(f *testing.F) {
	f.Add([]byte(putBody), uint64(0b101), []byte(`{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"s"}]}`))
	f.Add([]byte(`{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/x","Records":[{"Data":"","PartitionKey":"\"q\""}]}`), uint64(1), []byte(`{}`))
	f.Add([]byte(`{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":"a"},{"Data":"AA==","PartitionKey":"b"}]}`), uint64(0), []byte(`{"Records":[]}`))
	f.Fuzz(func(t *testing.T, body []byte, mask uint64, upstream []byte) {
		req, err := scanPutRecords(body)
		if err != nil {
			if !errors.Is(err, errScan) {
				t.Fatalf("error %v is not errScan", err)
			}
			return
		}
		n := len(req.entries)
		keep := make([]bool, n)
		var kept []int
		for i := range keep {
			keep[i] = i >= 64 || mask&(1<<i) == 0
			if keep[i] {
				kept = append(kept, i)
			}
		}
		fwd := req.subset(keep)
		if len(kept) == n && !bytes.Equal(fwd, body) {
			t.Fatalf("subset(all) changed the body")
		}
		if len(kept) > 0 {
			sub, err := scanPutRecords(fwd)
			if err != nil {
				t.Fatalf("forwarded subset does not scan: %v\n%s", err, fwd)
			}
			if len(sub.entries) != len(kept) {
				t.Fatalf("subset has %d entries, want %d", len(sub.entries), len(kept))
			}
			for j, i := range kept {
				a, b := sub.entries[j], req.entries[i]
				if !bytes.Equal(fwd[a.start:a.end], body[b.start:b.end]) || a.size != b.size || a.hash != b.hash {
					t.Fatalf("subset entry %d differs from request entry %d", j, i)
				}
			}
		}

		// The upstream's answer: the fuzzer's, else a well-formed one for the kept entries.
		resp, err := scanPutRecordsResponse(upstream)
		if err != nil || len(resp.results) != len(kept) {
			var b strings.Builder
			b.WriteString(`{"FailedRecordCount":0,"Records":[`)
			for j := range kept {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"SequenceNumber":"%d","ShardId":"shardId-0"}`, j)
			}
			b.WriteString(`]}`)
			if resp, err = scanPutRecordsResponse([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
		}
		outs := make([]outcome, n)
		wantFailed := 0
		j := 0
		for i := range outs {
			if keep[i] {
				outs[i] = outcome{upstream: j}
				if resp.results[j].errorCode != "" {
					wantFailed++
				}
				j++
			} else {
				outs[i] = outcome{upstream: -1, code: codeThrottled, message: "m"}
				wantFailed++
			}
		}
		merged := resp.merge(outs)
		if len(kept) == n && !bytes.Equal(merged, resp.body) {
			t.Fatalf("nothing throttled, yet the answer changed")
		}
		m, err := scanPutRecordsResponse(merged)
		if err != nil {
			t.Fatalf("merged answer does not scan: %v\n%s", err, merged)
		}
		if len(m.results) != n {
			t.Fatalf("merged answer has %d results for %d entries", len(m.results), n)
		}
		gotFailed := 0
		for i, r := range m.results {
			if r.errorCode != "" {
				gotFailed++
			}
			if !keep[i] && r.errorCode != codeThrottled {
				t.Fatalf("throttled entry %d answered %q", i, r.errorCode)
			}
		}
		if gotFailed != wantFailed {
			t.Fatalf("%d failed results, want %d", gotFailed, wantFailed)
		}
		// FailedRecordCount only counts when the proxy wrote it.
		if len(kept) < n {
			var v struct{ FailedRecordCount *int }
			if err := json.Unmarshal(merged, &v); err != nil || v.FailedRecordCount == nil || *v.FailedRecordCount != wantFailed {
				t.Fatalf("FailedRecordCount of %s: %v", merged, err)
			}
		}
	})
}

// FuzzRewriteGetRecords feeds arbitrary bodies to the iterator scanners. Properties: no
// panic; only errScan errors; a wrapped NextShardIterator unwraps to the upstream's; a
// request with the proxy's iterator goes upstream with the upstream's iterator and nothing
// else changed.
func FuzzRewriteGetRecords(f *testing.F) {
	f.Add([]byte(`{"Records":[{"Data":"aGk=","PartitionKey":"k"}],"NextShardIterator":"AAA","MillisBehindLatest":3}`))
	f.Add([]byte(`{"ShardIterator":"kpx1|s|shardId-0|AAA","Limit":5}`))
	f.Add([]byte(`{"NextShardIterator":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		key := shardKey{"s", "shardId-0"}
		out, size, err := rewriteGetRecords(body, key)
		if err != nil {
			if !errors.Is(err, errScan) {
				t.Fatalf("error %v is not errScan", err)
			}
		} else {
			if size < 0 {
				t.Fatalf("negative size %v", size)
			}
			ms, err := scanObject(out)
			if err != nil {
				t.Fatalf("rewritten body does not scan: %v", err)
			}
			orig, _ := scanObject(body)
			up, _ := optString(orig, body, "NextShardIterator")
			got, _ := optString(ms, out, "NextShardIterator")
			if up == "" && !bytes.Equal(out, body) {
				t.Fatalf("no iterator, yet the body changed")
			}
			if s, sh, u, ok := unwrapIterator(got); up != "" && (!ok || s != key.stream || sh != key.shard || u != up) {
				t.Fatalf("NextShardIterator %q wraps %q %q %q, want %q", got, s, sh, u, up)
			}
		}

		fwd, k, ours, err := unwrapGetRecords(body)
		if err != nil {
			if !errors.Is(err, errScan) {
				t.Fatalf("error %v is not errScan", err)
			}
			return
		}
		if !ours {
			if !bytes.Equal(fwd, body) {
				t.Fatalf("a foreign iterator's request changed")
			}
			return
		}
		ms, _ := scanObject(body)
		tok, _ := optString(ms, body, "ShardIterator")
		_, _, up, _ := unwrapIterator(tok)
		fms, err := scanObject(fwd)
		if err != nil {
			t.Fatalf("forwarded request does not scan: %v", err)
		}
		if got, _ := optString(fms, fwd, "ShardIterator"); got != up || k.stream == "" || k.shard == "" {
			t.Fatalf("forwarded iterator %q, want %q (key %+v)", got, up, k)
		}
	})
}

// BenchmarkPutRecordsPath measures what the proxy spends on a 500-entry PutRecords of
// 100-byte records beyond forwarding it: scanning the request, cutting out throttled
// entries, scanning the answer and merging it.
func BenchmarkPutRecordsPath(b *testing.B) {
	var req, resp strings.Builder
	req.WriteString(`{"StreamName":"s","Records":[`)
	resp.WriteString(`{"FailedRecordCount":0,"Records":[`)
	data := strings.Repeat("QUFB", 34) // 102 bytes of data
	for i := range 500 {
		if i > 0 {
			req.WriteByte(',')
		}
		fmt.Fprintf(&req, `{"Data":"%s","PartitionKey":"key-%d"}`, data, i)
		if i%2 == 0 {
			if i > 0 {
				resp.WriteByte(',')
			}
			fmt.Fprintf(&resp, `{"SequenceNumber":"4968077214303064925879456657875805402728496979315471155%d","ShardId":"shardId-000000000000"}`, i)
		}
	}
	req.WriteString(`]}`)
	resp.WriteString(`]}`)
	body, up := []byte(req.String()), []byte(resp.String())
	keep := make([]bool, 500)
	outs := make([]outcome, 500)
	for i := range keep {
		keep[i] = i%2 == 0
		outs[i] = outcome{upstream: i / 2}
		if !keep[i] {
			outs[i] = outcome{upstream: -1, code: codeThrottled, message: "m"}
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := scanPutRecords(body)
		if err != nil {
			b.Fatal(err)
		}
		_ = r.subset(keep)
		pr, err := scanPutRecordsResponse(up)
		if err != nil || len(pr.results) != 250 {
			b.Fatal(err)
		}
		_ = pr.merge(outs)
	}
}
