package kinesisproxy

import (
	"fmt"
	"net/http"
	"time"
)

// readThrottleMessage is Kinesis's message for a throttled GetRecords call.
func readThrottleMessage(k shardKey) string {
	return fmt.Sprintf("Rate exceeded for Shard - %s in stream %s under account %s.", k.shard, k.stream, defaultAccount)
}

// getShardIterator hands out the proxy's own iterator, which names the shard that
// GetRecords calls with it read from. With the limits off the call is only relayed.
func (c *call) getShardIterator(pl plan) {
	if c.p.limits == nil {
		c.relay(pl, false)
		return
	}
	body, ok := c.readBody()
	if !ok {
		return
	}
	stream, shard, err := scanGetShardIterator(body)
	if err != nil {
		c.relayBody(pl, body)
		return
	}
	resp, b, ok := c.exchange(pl, body)
	if !ok {
		return
	}
	out, changed := b, false
	if resp.StatusCode == http.StatusOK {
		if out, err = rewriteShardIterator(b, stream.name, shard); err != nil {
			c.unscanned()
			out = b
		}
		changed = err == nil
	}
	if c.finish(pl) {
		c.writeResponse(resp, out, changed)
	}
}

// getRecords charges a call to the shard the proxy's iterator names, refuses it with HTTP
// 400 ProvisionedThroughputExceededException when the shard has no call left or still owes
// bytes, and charges the bytes returned.
func (c *call) getRecords(pl plan) {
	if c.p.limits == nil {
		c.relay(pl, false)
		return
	}
	body, ok := c.readBody()
	if !ok {
		return
	}
	fwd, key, ours, err := unwrapGetRecords(body)
	if err != nil || !ours {
		c.relayBody(pl, body)
		return
	}
	now := time.Now()
	sl := c.p.limits.shard(key, now)
	if !sl.takeRead(now) {
		c.p.counters.update(c.op, func(o *OpCounters) { o.ThrottledCalls++ })
		c.writeError(http.StatusBadRequest, codeThrottled, readThrottleMessage(key))
		return
	}
	resp, b, ok := c.exchange(pl, fwd)
	if !ok {
		return
	}
	out, changed := b, false
	if resp.StatusCode == http.StatusOK {
		var size float64
		if out, size, err = rewriteGetRecords(b, key); err != nil {
			c.unscanned()
			out = b
		}
		changed = err == nil
		sl.chargeRead(time.Now(), size)
	}
	if c.finish(pl) {
		c.writeResponse(resp, out, changed)
	}
}
