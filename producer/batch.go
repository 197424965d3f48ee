package producer

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// request is one PutRecords call: the entries it carries, the input built from them, and,
// once a sender has made the call, what became of each entry. Requests are recycled.
type request struct {
	entries []entry
	bytes   int
	records []types.PutRecordsRequestEntry
	input   kinesis.PutRecordsInput
	status  []entryStatus
	done    []*Result // sender scratch
}

// entryStatus is what a sender found out about one entry.
type entryStatus struct {
	kind    uint8
	shardID string // where Kinesis stored it (delivered, verify)
	seq     string
	err     error // retry, abort
}

const (
	stSettled uint8 = iota // every record has its outcome (delivered or failed for good)
	stRetry                // retryable failure: the dispatcher retries or gives up
	stVerify               // an aggregate stored on an unexpected shard
	stAbort                // the producer is stopping: fail with ErrClosed
)

// worthSending reports whether a request should leave now: some sendable entry is due (its
// linger time is over, or Close wants everything out), or the sendable entries fill a request.
func (d *dispatcher) worthSending(now time.Time) bool {
	if d.queued == 0 {
		return false
	}
	count, bytes := 0, 0
	for _, s := range d.active {
		if s.q.len() == 0 || !d.eligible(s, now) {
			continue
		}
		head := s.q.front()
		if s.lim.readyAt(now, head.size).After(now) {
			continue
		}
		if d.closing || !now.Before(head.deadline) {
			return true
		}
		if d.cfg.ordering {
			count, bytes = count+1, bytes+head.size // one entry per shard per request
		} else {
			count, bytes = count+s.q.len(), bytes+s.qBytes
		}
	}
	return count >= d.cfg.batchRecords || bytes >= d.cfg.batchBytes
}

// build fills a request from the shard queues, starting at a rotating shard so that no shard
// starves, within the batch limits, the rate limits and (with ordering) one entry per shard.
func (d *dispatcher) build(now time.Time) *request {
	n := len(d.active)
	if n == 0 {
		return nil
	}
	req := d.newRequest()
	start := d.rr % n
	d.rr++
	for k := 0; k < n; k++ {
		s := d.active[(start+k)%n]
		if s.q.len() == 0 || !d.eligible(s, now) {
			continue
		}
		for s.q.len() > 0 && len(req.entries) < d.cfg.batchRecords {
			head := s.q.front()
			// An entry larger than the byte limit may travel alone.
			if len(req.entries) > 0 && req.bytes+head.size > d.cfg.batchBytes {
				break
			}
			if s.lim.readyAt(now, head.size).After(now) {
				break
			}
			s.lim.take(now, head.size)
			e := s.q.popFront()
			s.qBytes -= e.size
			d.queued--
			s.inFlight++
			req.entries = append(req.entries, e)
			req.bytes += e.size
			if d.cfg.ordering {
				break
			}
		}
		if len(req.entries) >= d.cfg.batchRecords || req.bytes >= d.cfg.batchBytes {
			break
		}
	}
	if len(req.entries) == 0 {
		d.recycleRequest(req)
		return nil
	}
	return req
}

// send hands req to a sender. The in-flight limit guarantees room in the channel.
func (d *dispatcher) send(req *request) {
	for i := range req.entries {
		e := &req.entries[i]
		e.attempts++
		// Pointers into req.entries: no allocation, valid until the request is recycled.
		rec := types.PutRecordsRequestEntry{Data: e.data, PartitionKey: &e.pk}
		if e.ehk != "" {
			rec.ExplicitHashKey = &e.ehk
		}
		req.records = append(req.records, rec)
	}
	req.input = kinesis.PutRecordsInput{StreamName: &d.p.stream, Records: req.records}
	if cap(req.status) < len(req.entries) {
		req.status = make([]entryStatus, len(req.entries))
	}
	req.status = req.status[:len(req.entries)]
	d.inFlight++
	d.p.stats.requests.Add(1)
	d.p.reqs <- req
}

func (d *dispatcher) newRequest() *request {
	if n := len(d.free); n > 0 {
		req := d.free[n-1]
		d.free = d.free[:n-1]
		return req
	}
	return &request{}
}

func (d *dispatcher) recycleRequest(req *request) {
	clear(req.entries)
	clear(req.records)
	clear(req.status)
	req.entries, req.records, req.status = req.entries[:0], req.records[:0], req.status[:0]
	req.bytes = 0
	req.input = kinesis.PutRecordsInput{}
	if len(d.free) < d.cfg.maxInFlight+1 {
		d.free = append(d.free, req)
	}
}
