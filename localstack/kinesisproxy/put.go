package kinesisproxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/shardline/kinesis/internal/shardmap"
)

const (
	codeThrottled       = "ProvisionedThroughputExceededException"
	codeInternalFailure = "InternalFailure"
	msgInternalFailure  = "Internal service failure."
)

// writeThrottleMessage is Kinesis's message for a throttled write.
func writeThrottleMessage(shard string, s streamRef) string {
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shard, s.name, s.account())
}

// route returns the shard of each hash, or nil when the limits are off or the stream's
// shards cannot be listed (the call then passes unlimited).
func (c *call) route(s streamRef, hashes []shardmap.Hash) []string {
	if c.p.limits == nil {
		return nil
	}
	ids, err := c.p.maps.route(c.r.Context(), s, c.r.Header, hashes, time.Now())
	if err != nil {
		c.unscanned()
		return nil
	}
	return ids
}

// putRecords throttles and fails PutRecords entries one by one, forwards the rest, and
// merges the upstream's per-entry results back in request order.
func (c *call) putRecords(pl plan) {
	body, ok := c.readBody()
	if !ok {
		return
	}
	req, err := scanPutRecords(body)
	if err != nil {
		c.relayBody(pl, body)
		return
	}
	n := len(req.entries)
	hashes := make([]shardmap.Hash, n)
	for i, e := range req.entries {
		hashes[i] = e.hash
	}
	shards := c.route(req.stream, hashes)
	failed := c.p.rnd.drawEntries(pl.entryRates, n, func(int) bool { return true })

	outs := make([]outcome, n)
	keep := make([]bool, n)
	var nFailed, nThrottled, nKept int64
	now := time.Now()
	for i, e := range req.entries {
		switch {
		case failed != nil && failed[i]:
			outs[i] = outcome{upstream: -1, code: codeInternalFailure, message: msgInternalFailure}
			nFailed++
		case shards != nil && shards[i] != "" &&
			!c.p.limits.shard(shardKey{req.stream.name, shards[i]}, now).takeWrite(now, e.size):
			outs[i] = outcome{upstream: -1, code: codeThrottled, message: writeThrottleMessage(shards[i], req.stream)}
			nThrottled++
		default:
			outs[i] = outcome{upstream: int(nKept)}
			keep[i] = true
			nKept++
		}
	}
	c.p.counters.update(c.op, func(o *OpCounters) {
		o.Entries += int64(n)
		o.ThrottledEntries += nThrottled
	})
	if nFailed > 0 {
		c.p.counters.fault(c.op, EntryInternalFailure, nFailed)
	}

	if nKept == 0 {
		// Nothing to write: answer as Kinesis would, without a call upstream.
		empty, _ := scanPutRecordsResponse(emptyPutRecordsResponse)
		if c.finish(pl) {
			c.writeJSON(empty.merge(outs))
		}
		return
	}
	resp, b, ok := c.exchange(pl, req.subset(keep))
	if !ok {
		return
	}
	if resp.StatusCode != http.StatusOK {
		// A call-level error (missing stream, validation): the client gets it as is.
		if c.finish(pl) {
			c.writeResponse(resp, b, false)
		}
		return
	}
	pr, err := scanPutRecordsResponse(b)
	if err == nil && len(pr.results) != int(nKept) {
		err = fmt.Errorf("%d results for %d entries", len(pr.results), nKept)
	}
	if err != nil {
		if nKept == int64(n) {
			c.unscanned() // nothing to merge: the client gets the upstream's answer
			if c.finish(pl) {
				c.writeResponse(resp, b, false)
			}
			return
		}
		c.upstreamError(fmt.Errorf("kinesisproxy: cannot merge the upstream's PutRecords answer: %w", err))
		return
	}

	// Entries written upstream that an After fault reports failed anyway.
	after := c.p.rnd.drawEntries(pl.entryAfterRates, n, func(i int) bool {
		return keep[i] && pr.results[outs[i].upstream].errorCode == ""
	})
	var nAfter int64
	for i := range after {
		if after[i] {
			outs[i].code, outs[i].message = codeInternalFailure, msgInternalFailure
			nAfter++
		}
	}
	if nAfter > 0 {
		c.p.counters.fault(c.op, EntryInternalFailure, nAfter)
	}
	// A record the upstream put on another shard than predicted: the stream has been
	// resharded since the map was listed.
	for i := range outs {
		if keep[i] && shards != nil && shards[i] != "" {
			if id := pr.results[outs[i].upstream].shardID; id != "" && id != shards[i] {
				c.p.maps.markStale(req.stream.name)
				break
			}
		}
	}
	written := nAfter // stored upstream, reported failed to the client
	if pl.failAfter != 0 {
		written = 0
		for i := range outs {
			if keep[i] && pr.results[outs[i].upstream].errorCode == "" {
				written++ // the whole answer is lost: every stored entry looks failed
			}
		}
	}
	if written > 0 {
		c.p.counters.update(c.op, func(o *OpCounters) { o.WrittenButFailed += written })
	}
	if c.finish(pl) {
		// merge returns the upstream's body itself when no entry's answer changed.
		c.writeResponse(resp, pr.merge(outs), nFailed+nThrottled+nAfter > 0)
	}
}

// putRecord throttles a PutRecord call as a whole: HTTP 400, as Kinesis answers it.
func (c *call) putRecord(pl plan) {
	body, ok := c.readBody()
	if !ok {
		return
	}
	stream, e, err := scanPutRecord(body)
	if err != nil {
		c.relayBody(pl, body)
		return
	}
	c.p.counters.update(c.op, func(o *OpCounters) { o.Entries++ })
	var shard string
	if ids := c.route(stream, []shardmap.Hash{e.hash}); ids != nil {
		shard = ids[0]
	}
	now := time.Now()
	if shard != "" && !c.p.limits.shard(shardKey{stream.name, shard}, now).takeWrite(now, e.size) {
		c.p.counters.update(c.op, func(o *OpCounters) { o.ThrottledEntries++; o.ThrottledCalls++ })
		c.writeError(http.StatusBadRequest, codeThrottled, writeThrottleMessage(shard, stream))
		return
	}
	resp, b, ok := c.exchange(pl, body)
	if !ok {
		return
	}
	if shard != "" && resp.StatusCode == http.StatusOK {
		if ms, err := scanObject(b); err == nil {
			if id, _ := optString(ms, b, "ShardId"); id != "" && id != shard {
				c.p.maps.markStale(stream.name)
			}
		}
	}
	if pl.failAfter != 0 && resp.StatusCode == http.StatusOK {
		c.p.counters.update(c.op, func(o *OpCounters) { o.WrittenButFailed++ })
	}
	if c.finish(pl) {
		c.writeResponse(resp, b, false)
	}
}
