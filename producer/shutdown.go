package producer

import (
	"context"
	"time"
)

// shutdown fails everything the dispatcher still holds with ErrClosed (wrapped with the cause
// Close gave), waits for the requests in flight and fails what they did not deliver, then
// stops the senders. After a complete drain it has nothing to fail.
func (d *dispatcher) shutdown() {
	p := d.p
	cerr := p.closeError()
	var rs []*Result
	rs = append(rs, d.waiting...)
	d.waiting = nil
	now := time.Now()
	for _, r := range p.buf.take(nil) {
		r.accepted = now
		rs = append(rs, r)
	}
	for _, s := range d.shards {
		rs = d.drain(s, rs)
	}
	for i := range d.verify {
		rs = d.settleLanded(&d.verify[i], now, rs)
	}
	d.verify = nil
	p.fail(rs, cerr)
	for d.inFlight > 0 {
		req := <-p.resps
		d.inFlight--
		var left []*Result
		for i := range req.entries {
			e, st := &req.entries[i], &req.status[i]
			switch st.kind {
			case stRetry, stAbort:
				left = e.appendRecs(left)
			case stVerify:
				e.shard.verifying++ // settleLanded counts it out again
				left = d.settleLanded(&verifyItem{e: *e, landed: st.shardID, seq: st.seq}, now, left)
			}
		}
		// These may have reached Kinesis (the call was cut short): ErrClosed says only that
		// the producer could not confirm them.
		p.fail(left, cerr)
	}
	close(p.reqs)
	p.setGauges()
}

// closeError is the outcome error of records Close gives up on.
func (p *Producer) closeError() error {
	if cause := context.Cause(p.run); cause != nil && cause != context.Canceled {
		return cause
	}
	return ErrClosed
}
