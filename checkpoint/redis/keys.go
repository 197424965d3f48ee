package redis

import "strings"

// Key layout (documented in doc.go). For consumer group g, stream s, shard h and worker w:
//
//	<prefix>:{<esc(g)>/<esc(s)>}:lease:<h>   hash: one lease row
//	<prefix>:{<esc(g)>/<esc(s)>}:leases      set: the shard IDs that have a lease row
//	<prefix>:{<esc(g)>/<esc(s)>}:worker:<w>  hash: one worker row
//	<prefix>:{<esc(g)>/<esc(s)>}:workers     set: the worker IDs that have a row
//
// The {...} section is a Redis Cluster hash tag: every key of one group and stream lands in
// one slot, so a script may touch a lease row and its index together.

// Hash fields of a lease row.
const (
	fieldOwner   = "owner"   // worker ID; absent when the lease is free
	fieldToken   = "token"   // tenure token; absent when the lease is free
	fieldCounter = "counter" // decimal int64, incremented with HINCRBY
	fieldSeq     = "seq"     // checkpoint sequence number
	fieldSubSeq  = "subseq"  // checkpoint sub-sequence number, decimal
	fieldEnd     = "end"     // "1" when the checkpoint is SHARD_END
	fieldOrder   = "order"   // checkpoint.Position.OrderKey of the checkpoint
	fieldPending = "pending" // worker that asked for a graceful handoff
	fieldOp      = "op"      // nonce of the last take, release or handoff request (replay detection)
)

// Hash fields of a worker row besides fieldCounter.
const (
	fieldInstance = "instance" // instance of the last heartbeat; absent in rows of older versions
)

// escaper percent-encodes the bytes that would make a tag ambiguous: '{' and '}' (hash-tag
// delimiters), '/' (between group and stream), ':' (between key parts) and '%' itself, so the
// encoding is reversible and two different (group, stream) pairs never share a tag.
// strings.Replacer with single-byte patterns works in one pass, so "%" is not encoded twice.
var escaper = strings.NewReplacer(
	"%", "%25",
	"/", "%2F",
	":", "%3A",
	"{", "%7B",
	"}", "%7D",
)

// keyspace builds the keys of one store.
type keyspace struct {
	prefix string // ends with ':'
}

func newKeyspace(prefix string) keyspace {
	if !strings.HasSuffix(prefix, ":") {
		prefix += ":"
	}
	return keyspace{prefix: prefix}
}

// tag returns "<prefix>:{<esc(group)>/<esc(stream)>}", the part shared by every key of group
// and stream.
func (k keyspace) tag(group, stream string) string {
	return k.prefix + "{" + escaper.Replace(group) + "/" + escaper.Replace(stream) + "}"
}

func leaseKey(tag, shard string) string { return tag + ":lease:" + shard }
func leaseIndex(tag string) string      { return tag + ":leases" }
func workerKey(tag, id string) string   { return tag + ":worker:" + id }
func workerIndex(tag string) string     { return tag + ":workers" }
