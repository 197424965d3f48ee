package kinesisproxy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/shardline/kinesis/internal/shardmap"
)

// This file reads and rewrites the Kinesis JSON 1.1 bodies the proxy looks into.

// defaultAccount is the account Kinesis names in errors when the call gave no stream ARN,
// as LocalStack and kinesis-mock use it.
const defaultAccount = "000000000000"

// streamRef names the stream a call addresses, by name or ARN.
type streamRef struct{ name, arn string }

// account returns the ARN's account, or the local engines' default one.
func (s streamRef) account() string {
	if parts := strings.Split(s.arn, ":"); len(parts) >= 6 && parts[4] != "" {
		return parts[4]
	}
	return defaultAccount
}

func scanStream(ms []member, b []byte) (streamRef, error) {
	name, err := optString(ms, b, "StreamName")
	if err != nil {
		return streamRef{}, err
	}
	arn, err := optString(ms, b, "StreamARN")
	if err != nil {
		return streamRef{}, err
	}
	if name == "" {
		if _, after, ok := strings.Cut(arn, ":stream/"); ok {
			name = after
		}
	}
	if name == "" {
		return streamRef{}, fmt.Errorf("%w: no StreamName or StreamARN", errScan)
	}
	return streamRef{name: name, arn: arn}, nil
}

// putEntry is one record of a PutRecords or PutRecord request.
type putEntry struct {
	span
	size float64 // data plus partition key, the bytes Kinesis charges
	hash shardmap.Hash
}

// scanEntry reads a record's members. An entry the upstream would refuse (no partition
// key, a bad explicit hash key, data that is not a string) is an error, so that the whole
// call is forwarded and the upstream gives its own answer.
func scanEntry(ms []member, b []byte) (putEntry, error) {
	dataSpan, ok := find(ms, b, "Data")
	if !ok {
		return putEntry{}, fmt.Errorf("%w: entry without Data", errScan)
	}
	dataLen, err := base64LenAt(b, dataSpan)
	if err != nil {
		return putEntry{}, err
	}
	key, err := optString(ms, b, "PartitionKey")
	if err != nil {
		return putEntry{}, err
	}
	if key == "" {
		return putEntry{}, fmt.Errorf("%w: entry without PartitionKey", errScan)
	}
	e := putEntry{size: float64(dataLen + len(key))}
	if ehk, err := optString(ms, b, "ExplicitHashKey"); err != nil {
		return putEntry{}, err
	} else if ehk != "" {
		if e.hash, err = shardmap.ParseHash(ehk); err != nil {
			return putEntry{}, fmt.Errorf("%w: %v", errScan, err)
		}
	} else {
		e.hash = shardmap.HashKey(key)
	}
	return e, nil
}

// base64LenAt returns the decoded length of the base64 JSON string at sp, padded or not,
// without copying it (records run to megabytes).
func base64LenAt(b []byte, sp span) (int, error) {
	v := b[sp.start:sp.end]
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		s, err := stringAt(b, sp)
		if err != nil {
			return 0, err
		}
		v = []byte(s)
	} else {
		v = v[1 : len(v)-1]
	}
	return len(bytes.TrimRight(v, "=")) * 3 / 4, nil
}

// putRecordsRequest is a scanned PutRecords request.
type putRecordsRequest struct {
	body    []byte
	stream  streamRef
	records span // the Records array
	entries []putEntry
}

func scanPutRecords(b []byte) (*putRecordsRequest, error) {
	ms, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	r := &putRecordsRequest{body: b}
	if r.stream, err = scanStream(ms, b); err != nil {
		return nil, err
	}
	var ok bool
	if r.records, ok = find(ms, b, "Records"); !ok {
		return nil, fmt.Errorf("%w: no Records", errScan)
	}
	// Parts of a body scanObject validated are valid: the walks need no second check.
	elems, err := arrayElements(b[r.records.start:r.records.end])
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%w: empty Records", errScan)
	}
	r.entries = make([]putEntry, len(elems))
	for i, el := range elems {
		el = span{start: r.records.start + el.start, end: r.records.start + el.end}
		ems, err := objectMembers(b[el.start:el.end])
		if err != nil {
			return nil, err
		}
		e, err := scanEntry(ems, b[el.start:el.end])
		if err != nil {
			return nil, err
		}
		e.span = el
		r.entries[i] = e
	}
	return r, nil
}

// subset returns the request with only the entries keep marks, every other byte as it was;
// with all of them, the request itself.
func (r *putRecordsRequest) subset(keep []bool) []byte {
	all := true
	for _, k := range keep {
		all = all && k
	}
	if all {
		return r.body
	}
	arr := []byte{'['}
	for i, e := range r.entries {
		if !keep[i] {
			continue
		}
		if len(arr) > 1 {
			arr = append(arr, ',')
		}
		arr = append(arr, r.body[e.start:e.end]...)
	}
	arr = append(arr, ']')
	return splice(r.body, []span{r.records}, [][]byte{arr})
}

// scanPutRecord reads a PutRecord request: a stream and one entry at the top level.
func scanPutRecord(b []byte) (streamRef, putEntry, error) {
	ms, err := scanObject(b)
	if err != nil {
		return streamRef{}, putEntry{}, err
	}
	s, err := scanStream(ms, b)
	if err != nil {
		return streamRef{}, putEntry{}, err
	}
	e, err := scanEntry(ms, b)
	return s, e, err
}

// putResult is one entry of a PutRecords response.
type putResult struct {
	span
	shardID, errorCode string
}

// putRecordsResponse is a scanned PutRecords response.
type putRecordsResponse struct {
	body      []byte
	failed    span // FailedRecordCount
	hasFailed bool
	records   span
	results   []putResult
}

func scanPutRecordsResponse(b []byte) (*putRecordsResponse, error) {
	ms, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	r := &putRecordsResponse{body: b}
	var ok bool
	if r.records, ok = find(ms, b, "Records"); !ok {
		return nil, fmt.Errorf("%w: no Records", errScan)
	}
	r.failed, r.hasFailed = find(ms, b, "FailedRecordCount")
	elems, err := arrayElements(b[r.records.start:r.records.end])
	if err != nil {
		return nil, err
	}
	r.results = make([]putResult, len(elems))
	for i, el := range elems {
		el = span{start: r.records.start + el.start, end: r.records.start + el.end}
		ems, err := objectMembers(b[el.start:el.end])
		if err != nil {
			return nil, err
		}
		res := putResult{span: el}
		if res.shardID, err = optString(ems, b[el.start:el.end], "ShardId"); err != nil {
			return nil, err
		}
		if res.errorCode, err = optString(ems, b[el.start:el.end], "ErrorCode"); err != nil {
			return nil, err
		}
		r.results[i] = res
	}
	return r, nil
}

// emptyPutRecordsResponse is the response merged into when no entry was forwarded.
var emptyPutRecordsResponse = []byte(`{"FailedRecordCount":0,"Records":[]}`)

// outcome says what the client is told about one entry of its request.
type outcome struct {
	upstream int    // index into the upstream's results; -1 when the entry was not forwarded
	code     string // an error that replaces the upstream's answer, or the one given instead
	message  string
}

// merge returns the response the client gets: one result per outcome, in request order,
// and FailedRecordCount recounted. When the outcomes are exactly the upstream's results,
// it returns the upstream's body unchanged.
func (r *putRecordsResponse) merge(outs []outcome) []byte {
	same := len(outs) == len(r.results)
	for i, o := range outs {
		same = same && o.upstream == i && o.code == ""
	}
	if same {
		return r.body
	}
	failed := 0
	arr := []byte{'['}
	for i, o := range outs {
		if i > 0 {
			arr = append(arr, ',')
		}
		if o.code != "" {
			failed++
			arr = append(arr, `{"ErrorCode":`...)
			arr = append(arr, quote(o.code)...)
			arr = append(arr, `,"ErrorMessage":`...)
			arr = append(arr, quote(o.message)...)
			arr = append(arr, '}')
			continue
		}
		res := r.results[o.upstream]
		if res.errorCode != "" {
			failed++
		}
		arr = append(arr, r.body[res.start:res.end]...)
	}
	arr = append(arr, ']')
	count := []byte(strconv.Itoa(failed))
	if !r.hasFailed {
		// Insert the count as the first member; Records follows it.
		open := span{start: r.records.start, end: r.records.start}
		for i, c := range r.body {
			if c == '{' {
				open = span{start: i + 1, end: i + 1}
				break
			}
		}
		return splice(r.body, []span{open, r.records}, [][]byte{append([]byte(`"FailedRecordCount":`), append(count, ',')...), arr})
	}
	if r.failed.start < r.records.start {
		return splice(r.body, []span{r.failed, r.records}, [][]byte{count, arr})
	}
	return splice(r.body, []span{r.records, r.failed}, [][]byte{arr, count})
}

// Shard iterators are opaque and differ between engines, so the proxy hands out its own:
// the prefix, the stream, the shard and the upstream's iterator. Stream names and shard IDs
// never contain '|'; the upstream iterator is everything after the third one.
const iteratorPrefix = "kpx1|"

// wrapIterator returns the proxy's iterator for an upstream one; an empty iterator (which
// no engine hands out) stays empty, so that it reaches the upstream as the client sent it.
func wrapIterator(stream, shard, upstream string) string {
	if upstream == "" {
		return ""
	}
	return iteratorPrefix + stream + "|" + shard + "|" + upstream
}

// unwrapIterator returns what wrapIterator put in tok; ok is false for an iterator the
// proxy did not make.
func unwrapIterator(tok string) (stream, shard, upstream string, ok bool) {
	rest, ok := strings.CutPrefix(tok, iteratorPrefix)
	if !ok {
		return "", "", "", false
	}
	stream, rest, ok1 := strings.Cut(rest, "|")
	shard, upstream, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || stream == "" || shard == "" || upstream == "" {
		return "", "", "", false
	}
	return stream, shard, upstream, true
}

// replaceString returns b with the string member key replaced by f of its value; when key is
// absent or null, or f keeps the value, b itself.
func replaceString(b []byte, ms []member, key string, f func(string) string) ([]byte, error) {
	sp, ok := find(ms, b, key)
	if !ok {
		return b, nil
	}
	v, err := stringAt(b, sp)
	if err != nil {
		return nil, err
	}
	nv := f(v)
	if nv == v {
		return b, nil
	}
	return splice(b, []span{sp}, [][]byte{quote(nv)}), nil
}

// scanGetShardIterator reads the stream and shard a GetShardIterator request names.
func scanGetShardIterator(b []byte) (streamRef, string, error) {
	ms, err := scanObject(b)
	if err != nil {
		return streamRef{}, "", err
	}
	s, err := scanStream(ms, b)
	if err != nil {
		return streamRef{}, "", err
	}
	shard, err := optString(ms, b, "ShardId")
	if err == nil && shard == "" {
		err = fmt.Errorf("%w: no ShardId", errScan)
	}
	return s, shard, err
}

// rewriteShardIterator wraps the ShardIterator of a GetShardIterator response.
func rewriteShardIterator(b []byte, stream, shard string) ([]byte, error) {
	ms, err := scanObject(b)
	if err != nil {
		return nil, err
	}
	return replaceString(b, ms, "ShardIterator", func(it string) string { return wrapIterator(stream, shard, it) })
}

// unwrapGetRecords returns a GetRecords request with the proxy's iterator replaced by the
// upstream's, and the shard it reads; ok is false when the iterator is not the proxy's.
func unwrapGetRecords(b []byte) (out []byte, shard shardKey, ok bool, err error) {
	ms, err := scanObject(b)
	if err != nil {
		return nil, shardKey{}, false, err
	}
	out, err = replaceString(b, ms, "ShardIterator", func(tok string) string {
		var up string
		shard.stream, shard.shard, up, ok = unwrapIterator(tok)
		if !ok {
			return tok
		}
		return up
	})
	if err != nil || !ok {
		return b, shardKey{}, false, err
	}
	return out, shard, true, nil
}

// rewriteGetRecords wraps the NextShardIterator of a GetRecords response for shard and
// returns the bytes its records count against the read limit (data plus partition keys).
func rewriteGetRecords(b []byte, shard shardKey) ([]byte, float64, error) {
	ms, err := scanObject(b)
	if err != nil {
		return nil, 0, err
	}
	var size float64
	if recs, ok := find(ms, b, "Records"); ok {
		elems, err := arrayElements(b[recs.start:recs.end])
		if err != nil {
			return nil, 0, err
		}
		for _, el := range elems {
			rb := b[recs.start+el.start : recs.start+el.end]
			rms, err := objectMembers(rb)
			if err != nil {
				return nil, 0, err
			}
			dataLen := 0
			if sp, ok := find(rms, rb, "Data"); ok {
				if dataLen, err = base64LenAt(rb, sp); err != nil {
					return nil, 0, err
				}
			}
			key, err := optString(rms, rb, "PartitionKey")
			if err != nil {
				return nil, 0, err
			}
			size += float64(dataLen + len(key))
		}
	}
	out, err := replaceString(b, ms, "NextShardIterator", func(it string) string {
		return wrapIterator(shard.stream, shard.shard, it)
	})
	return out, size, err
}
