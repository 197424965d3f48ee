// Package fake is an in-memory Kinesis endpoint that speaks the service's JSON 1.1 protocol
// over HTTP, so that the libraries under comparison talk to it through the real AWS SDK and
// pay the same HTTP and JSON costs they pay against Kinesis.
//
// It implements what the compared producers and consumers call: PutRecords, ListShards,
// DescribeStream, DescribeStreamSummary, GetShardIterator and GetRecords. Streams are made
// through its control API (see Control), not through CreateStream:
//
//   - a stream created empty takes PutRecords: each entry goes to the shard its explicit
//     hash key or the MD5 of its partition key falls in, gets an increasing sequence number,
//     and is checked and counted (user records, records off their key's shard, lost keys,
//     duplicates) but not kept;
//   - a loaded stream serves pre-built records (plain or KPL-aggregated) to GetRecords, with
//     each record's JSON encoded once at load time.
//
// It never throttles and never fails an entry.
package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/shardline/kinesis/bench/hashkey"
	"github.com/shardline/kinesis/bench/workload"
)

// Kinesis limits the fake applies to GetRecords.
const (
	maxGetRecords      = 10000
	maxGetRecordsBytes = 10 << 20
)

// kplMagic starts the data of a KPL aggregated record.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// Server is the fake endpoint. The zero value is not usable; call New.
type Server struct {
	mu      sync.RWMutex
	streams map[string]*stream
	seq     atomic.Uint64 // last sequence number handed out, across streams
	http    *httptest.Server
}

// New returns a Server that is not listening; call Start or use it as an http.Handler.
func New() *Server {
	s := &Server{streams: make(map[string]*stream)}
	s.seq.Store(1 << 40)
	return s
}

// Start serves s on an ephemeral port of 127.0.0.1 and returns its base URL.
func (s *Server) Start() string {
	s.http = httptest.NewServer(s)
	return s.http.URL
}

// Close stops a started server.
func (s *Server) Close() {
	if s.http != nil {
		s.http.Close()
	}
}

// stream is one stream of the fake.
type stream struct {
	name   string
	ranges []hashkey.Range
	shards []*shard

	// For streams that take puts.
	verify bool
	tally  *workload.Tally
	stats  putStats
}

// shard holds the records GetRecords serves, for loaded streams.
type shard struct {
	recs  []stored
	first string // sequence number before every record, for SequenceNumberRange
}

// stored is one record as GetRecords returns it.
type stored struct {
	seq  string
	json []byte // the encoded Record object
	size int    // data bytes, for the 10 MiB response limit
}

type putStats struct {
	requests, entries, aggregates, userRecords, misplaced, keyChanged, malformed atomic.Int64
	perShard                                                                     []atomic.Int64
}

// sequence returns the next sequence number: 56 decimal digits as Kinesis uses, increasing
// across the whole fake so that it also increases within every shard.
func (s *Server) sequence() string {
	return formatSeq(s.seq.Add(1))
}

func formatSeq(n uint64) string {
	d := strconv.FormatUint(n, 10)
	return "49" + strings.Repeat("0", 54-len(d)) + d
}

// ServeHTTP dispatches Kinesis calls (POST / with X-Amz-Target) and control calls (/bench/).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/bench/") {
		s.serveControl(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Kinesis_20131202.")
	if r.Method != http.MethodPost || !ok {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unsupported request "+r.Method+" "+target)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var out any
	switch op {
	case "PutRecords":
		out, err = s.putRecords(body)
	case "ListShards":
		out, err = s.listShards(body)
	case "DescribeStream":
		out, err = s.describeStream(body, true)
	case "DescribeStreamSummary":
		out, err = s.describeStream(body, false)
	case "GetShardIterator":
		out, err = s.getShardIterator(body)
	case "GetRecords":
		s.getRecords(w, body)
		return
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "operation "+op+" is not implemented by the fake")
		return
	}
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, out)
}

// apiError is a Kinesis error response.
type apiError struct {
	code, msg string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func notFound(format string, args ...any) error {
	return &apiError{"ResourceNotFoundException", fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &apiError{"InvalidArgumentException", fmt.Sprintf(format, args...)}
}

func writeAPIError(w http.ResponseWriter, err error) {
	if e, ok := err.(*apiError); ok {
		writeError(w, http.StatusBadRequest, e.code, e.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Server) stream(name string) (*stream, error) {
	s.mu.RLock()
	st := s.streams[name]
	s.mu.RUnlock()
	if st == nil {
		return nil, notFound("Stream %s under account 000000000000 not found.", name)
	}
	return st, nil
}

// streamName returns the stream named by a request's StreamName or StreamARN.
func streamName(name, arn string) string {
	if name != "" {
		return name
	}
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func arnOf(name string) string { return "arn:aws:kinesis:us-east-1:000000000000:stream/" + name }

type putRecordsInput struct {
	StreamName string
	StreamARN  string
	Records    []struct {
		Data            []byte
		PartitionKey    string
		ExplicitHashKey *string
	}
}

type putResult struct {
	SequenceNumber string `json:",omitempty"`
	ShardID        string `json:"ShardId,omitempty"`
}

func (s *Server) putRecords(body []byte) (any, error) {
	var in putRecordsInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{"SerializationException", err.Error()}
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	if n := len(in.Records); n == 0 || n > 500 {
		return nil, invalid("1 to 500 records per PutRecords, got %d", n)
	}
	total := 0
	for _, e := range in.Records {
		total += len(e.Data) + len(e.PartitionKey)
	}
	if total > 5<<20 {
		return nil, invalid("PutRecords request of %d bytes exceeds 5 MiB", total)
	}
	out := make([]putResult, len(in.Records))
	for i, e := range in.Records {
		if e.PartitionKey == "" || len(e.PartitionKey) > 256 {
			return nil, invalid("partition key of %d bytes", len(e.PartitionKey))
		}
		if len(e.Data)+len(e.PartitionKey) > 1<<20 {
			return nil, invalid("record of %d bytes exceeds 1 MiB", len(e.Data)+len(e.PartitionKey))
		}
		h := hashkey.Of(e.PartitionKey)
		if e.ExplicitHashKey != nil {
			if h, err = hashkey.Parse(*e.ExplicitHashKey); err != nil {
				return nil, invalid("ExplicitHashKey %q: %v", *e.ExplicitHashKey, err)
			}
		}
		idx := hashkey.Find(st.ranges, h)
		seq := s.sequence()
		out[i] = putResult{SequenceNumber: seq, ShardID: st.ranges[idx].ShardID}
		st.stats.perShard[idx].Add(1)
		if st.verify {
			st.check(idx, e.PartitionKey, e.Data, seq)
		}
	}
	st.stats.requests.Add(1)
	st.stats.entries.Add(int64(len(in.Records)))
	return struct {
		FailedRecordCount int
		Records           []putResult
		EncryptionType    string
	}{0, out, "NONE"}, nil
}

// check counts the user records of one accepted entry that landed on shard idx: those whose
// key (read from their data, where the workload wrote it) maps elsewhere are misplaced, those
// whose partition key as read back differs from that key lost it.
func (st *stream) check(idx int, partitionKey string, data []byte, seq string) {
	recs, err := deaggregator.DeaggregateRecords([]types.Record{{Data: data, PartitionKey: &partitionKey, SequenceNumber: &seq}})
	if err != nil {
		st.stats.malformed.Add(1)
		return
	}
	if bytes.HasPrefix(data, kplMagic) {
		st.stats.aggregates.Add(1)
	}
	rng := st.ranges[idx]
	for _, r := range recs {
		key := workload.KeyOf(r.Data)
		if key == nil {
			st.stats.malformed.Add(1)
			continue
		}
		if !rng.Contains(hashkey.Of(string(key))) {
			st.stats.misplaced.Add(1)
		}
		if r.PartitionKey == nil || *r.PartitionKey != string(key) {
			st.stats.keyChanged.Add(1)
		}
		st.tally.Add(r.Data)
		st.stats.userRecords.Add(1)
	}
}

type shardJSON struct {
	ShardID      string `json:"ShardId"`
	HashKeyRange struct {
		StartingHashKey string
		EndingHashKey   string
	}
	SequenceNumberRange struct {
		StartingSequenceNumber string
	}
}

func (st *stream) shardList() []shardJSON {
	out := make([]shardJSON, len(st.ranges))
	for i, r := range st.ranges {
		out[i].ShardID = r.ShardID
		out[i].HashKeyRange.StartingHashKey = r.Start.String()
		out[i].HashKeyRange.EndingHashKey = r.End.String()
		out[i].SequenceNumberRange.StartingSequenceNumber = st.shards[i].first
	}
	return out
}

func (s *Server) listShards(body []byte) (any, error) {
	var in struct{ StreamName, StreamARN, NextToken string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{"SerializationException", err.Error()}
	}
	name := streamName(in.StreamName, in.StreamARN)
	if in.NextToken != "" {
		name = in.NextToken // the fake lists everything at once; a token names its stream
	}
	st, err := s.stream(name)
	if err != nil {
		return nil, err
	}
	return struct{ Shards []shardJSON }{st.shardList()}, nil
}

func (s *Server) describeStream(body []byte, withShards bool) (any, error) {
	var in struct{ StreamName, StreamARN string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{"SerializationException", err.Error()}
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	d := map[string]any{
		"StreamName":              st.name,
		"StreamARN":               arnOf(st.name),
		"StreamStatus":            "ACTIVE",
		"RetentionPeriodHours":    24,
		"StreamCreationTimestamp": float64(time.Now().Unix()),
		"EncryptionType":          "NONE",
		"EnhancedMonitoring":      []any{map[string]any{"ShardLevelMetrics": []string{}}},
		"StreamModeDetails":       map[string]string{"StreamMode": "PROVISIONED"},
	}
	if !withShards {
		d["OpenShardCount"] = len(st.ranges)
		d["ConsumerCount"] = 0
		return map[string]any{"StreamDescriptionSummary": d}, nil
	}
	d["Shards"] = st.shardList()
	d["HasMoreShards"] = false
	return map[string]any{"StreamDescription": d}, nil
}

// An iterator is "<stream>|<shard index>|<position>"; position indexes the shard's records.
func iterator(stream string, shard, pos int) string {
	return stream + "|" + strconv.Itoa(shard) + "|" + strconv.Itoa(pos)
}

func (s *Server) parseIterator(it string) (*stream, int, int, error) {
	parts := strings.Split(it, "|")
	if len(parts) != 3 {
		return nil, 0, 0, invalid("Invalid ShardIterator.")
	}
	st, err := s.stream(parts[0])
	if err != nil {
		return nil, 0, 0, err
	}
	shard, err1 := strconv.Atoi(parts[1])
	pos, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || shard < 0 || shard >= len(st.shards) || pos < 0 || pos > len(st.shards[shard].recs) {
		return nil, 0, 0, invalid("Invalid ShardIterator.")
	}
	return st, shard, pos, nil
}

func (s *Server) getShardIterator(body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, ShardID, ShardIteratorType, StartingSequenceNumber string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{"SerializationException", err.Error()}
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, r := range st.ranges {
		if r.ShardID == in.ShardID {
			idx = i
		}
	}
	if idx < 0 {
		return nil, notFound("Shard %s in stream %s does not exist", in.ShardID, st.name)
	}
	recs := st.shards[idx].recs
	// Sequence numbers have a fixed width, so string order is numeric order.
	search := func(after bool) int {
		lo, hi := 0, len(recs)
		for lo < hi {
			m := (lo + hi) / 2
			if recs[m].seq < in.StartingSequenceNumber || (after && recs[m].seq == in.StartingSequenceNumber) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo
	}
	var pos int
	switch in.ShardIteratorType {
	case "TRIM_HORIZON":
	case "LATEST":
		pos = len(recs)
	case "AT_SEQUENCE_NUMBER":
		pos = search(false)
	case "AFTER_SEQUENCE_NUMBER":
		pos = search(true)
	default:
		return nil, invalid("ShardIteratorType %q is not implemented by the fake", in.ShardIteratorType)
	}
	return struct{ ShardIterator string }{iterator(st.name, idx, pos)}, nil
}

// getRecords writes the response by concatenating the records' pre-encoded JSON.
func (s *Server) getRecords(w http.ResponseWriter, body []byte) {
	var in struct {
		ShardIterator string
		Limit         int
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	st, idx, pos, err := s.parseIterator(in.ShardIterator)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	limit := in.Limit
	if limit <= 0 || limit > maxGetRecords {
		limit = maxGetRecords
	}
	recs := st.shards[idx].recs
	end, nbytes, size := pos, 0, 64
	for end < len(recs) && end-pos < limit && (end == pos || nbytes+recs[end].size <= maxGetRecordsBytes) {
		nbytes += recs[end].size
		size += len(recs[end].json) + 1
		end++
	}
	behind := 0
	if end < len(recs) {
		behind = 1000 // anything but 0: more records are waiting
	}
	next := iterator(st.name, idx, end)
	buf := make([]byte, 0, size+len(next)+64)
	buf = append(buf, `{"Records":[`...)
	for i := pos; i < end; i++ {
		if i > pos {
			buf = append(buf, ',')
		}
		buf = append(buf, recs[i].json...)
	}
	buf = append(buf, `],"NextShardIterator":`...)
	buf = strconv.AppendQuote(buf, next)
	buf = append(buf, `,"MillisBehindLatest":`...)
	buf = strconv.AppendInt(buf, int64(behind), 10)
	buf = append(buf, '}')
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	_, _ = w.Write(buf)
}
