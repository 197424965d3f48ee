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

// planned is an entry chosen for the next request: its shard and its position in the
// shard's queue.
type planned struct {
	s *shard
	i int
}

// maxSkip bounds the keys a plan looks past, per shard, in entries that cannot leave yet
// (backoff, or a key in flight or older), to find entries of other keys behind them: a plain
// entry counts one, an aggregate its distinct key buckets. Each costs a few memory operations
// per plan. Entries of a shard further behind wait until the ones in front move: a key with a
// backlog of thousands of records (one leaves per round trip) holds back the other keys of
// its shard queued behind that backlog.
const maxSkip = 4096

// sendDue sends requests while one is worth sending and the in-flight limit allows, and
// returns how many it sent.
func (d *dispatcher) sendDue(now time.Time) int {
	sent := 0
	for d.inFlight < d.cfg.maxInFlight {
		if !d.collect(now) {
			d.dirty = false // until something changes, planning again finds the same
			return sent
		}
		d.send(d.commit(now), now)
		sent++
	}
	return sent // the in-flight limit: a response wakes us, and planning starts over
}

// collect plans the next request into d.plan and reports whether it is worth sending now:
// an entry in it is due (its linger time is over, or Close wants everything out), it reached
// the batch limits, or, with ordering, a queued entry cannot join it because it shares a key
// with an entry in it. A request that can take no more entries does not wait for company.
// The entries of a shard whose backlog waits for tokens are due once per pace.
//
// It walks the shards from a rotating start, so that none starves, and each shard's queue
// from the front (oldest first), taking every entry that may leave now, within the batch
// limits and the shard's tokens. With ordering, an entry may leave only if none of its keys
// has a record in flight or in an entry looked at before it in this plan: older entries of
// its keys, held back or chosen for this same request, go first (Kinesis may store the
// entries of one request in any order when some of them fail). Entries of other keys pass
// held-back ones, so a shard sends many records per request and has many requests in flight.
//
// It also sets d.planWake: when an entry it passed over may leave without an event.
func (d *dispatcher) collect(now time.Time) bool {
	clear(d.plan)
	d.plan = d.plan[:0]
	d.planWake = time.Time{}
	if d.queued == 0 || len(d.active) == 0 {
		return false
	}
	wake := func(t time.Time) {
		if d.planWake.IsZero() || t.Before(d.planWake) {
			d.planWake = t
		}
	}
	count, bytes := 0, 0
	worth := d.closing
	n := len(d.active)
	start := d.rr % n
	for k := 0; k < n && count < d.cfg.batchRecords; k++ {
		s := d.active[(start+k)%n]
		if s.q.len() == 0 {
			continue
		}
		if !d.sendable(s, now) {
			if now.Before(s.blockedUntil) {
				wake(s.blockedUntil)
			}
			continue
		}
		if s.idle && (s.idleUntil.IsZero() || now.Before(s.idleUntil)) {
			if !s.idleUntil.IsZero() {
				wake(s.idleUntil)
			}
			continue // as the last plan found: nothing to send
		}
		if d.keys != nil {
			d.keys.newScan()
		}
		sRecords, sBytes, skipped := 0, 0, 0
		due, starved := false, false // the shard has an entry that wants out now; tokens cut it
		var sWake time.Time          // when a held-back entry of the shard may leave
		shardWake := func(t time.Time) {
			if sWake.IsZero() || t.Before(sWake) {
				sWake = t
			}
			wake(t)
		}
		cut, full := false, false // stopped before the end of the queue; by the batch limits
	scan:
		for i := 0; i < s.q.len(); i++ {
			if count >= d.cfg.batchRecords {
				full = true
				break
			}
			e := s.q.at(i)
			held := now.Before(e.notBefore)
			if held {
				shardWake(e.notBefore)
			} else if d.keys != nil {
				if kind := d.keys.blocked(e); kind != free {
					held = true
					// An older entry of its key goes first, and not in the same request: the
					// entry is due as soon as its keys are free, since waiting longer for
					// company would cap its key at one record per linger time. If that older
					// entry is in this request, the request can take no more of the shard's
					// backlog: waiting for company would only delay it.
					if e.deadline.After(now) {
						e.deadline = now
					}
					if kind == candidate {
						due = true
					}
				}
			}
			// An entry larger than the byte limit may travel alone.
			tooBig := !held && count > 0 && bytes+e.size > d.cfg.batchBytes
			var readyAt time.Time
			if !held && !tooBig {
				readyAt = s.lim.readyAt(now, sRecords+1, sBytes+e.size)
			}
			chosen := !held && !tooBig && !readyAt.After(now)
			if d.keys != nil {
				d.keys.look(e, chosen)
			}
			switch {
			case held:
				if skipped += max(1, len(e.keys)); skipped >= maxSkip {
					cut = true
					break scan
				}
				continue
			case tooBig:
				worth = true // full for this entry: it goes in the next request
				full = true
				break scan
			case !chosen:
				shardWake(readyAt)
				starved, cut = true, true
				break scan
			}
			d.plan = append(d.plan, planned{s, i})
			count, bytes = count+1, bytes+e.size
			sRecords, sBytes = sRecords+1, sBytes+e.size
			if now.Before(e.deadline) {
				wake(e.deadline)
			} else {
				due = true
			}
		}
		// A shard whose backlog waits for tokens sends what they allow once per pace, not
		// every time a few more trickle in: same throughput (its buckets hold a second),
		// far fewer requests.
		if due && starved && now.Sub(s.lastSent) < d.pace {
			wake(s.lastSent.Add(d.pace))
			due = false
		}
		worth = worth || due
		// A shard with nothing (more) to send stays so until an event of its own (its keys
		// freed, entries pushed, the shard map, Flush, Close) or sWake: later plans skip it
		// rather than walk its held-back backlog again. commit makes a shard whose candidates
		// it takes idle the same way.
		s.scanFull, s.cutShort, s.idleUntil = full, cut, sWake
		s.idle = sRecords == 0 && !full
	}
	return len(d.plan) > 0 && (worth || count >= d.cfg.batchRecords || bytes >= d.cfg.batchBytes)
}

// commit takes the planned entries out of their queues into a request, spending their
// shards' tokens and, with ordering, marking their keys in flight.
func (d *dispatcher) commit(now time.Time) *request {
	req := d.newRequest()
	plan := d.plan
	for len(plan) > 0 {
		s := plan[0].s
		j := 1
		for j < len(plan) && plan[j].s == s {
			j++
		}
		from := len(req.entries)
		req.entries = s.q.take(plan[:j], req.entries)
		bytes := 0
		for i := from; i < len(req.entries); i++ {
			e := &req.entries[i]
			bytes += e.size
			if d.keys != nil {
				d.keys.fly(e, 1)
			}
		}
		s.lim.take(now, j, bytes)
		s.lastSent = now
		s.idle = !s.scanFull // the rest of what the plan looked at is held back
		s.qBytes -= bytes
		s.inFlight += j
		d.queued -= j
		req.bytes += bytes
		plan = plan[j:]
	}
	d.rr++
	d.dirty = true
	return req
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
