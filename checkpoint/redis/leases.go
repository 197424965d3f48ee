package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
)

// listChunk bounds how many rows one pipeline of ListLeases or ListWorkers reads, so a group
// with very many shards does not build one huge request and reply.
const listChunk = 500

// GetLease returns the lease row of key, or an error matching [checkpoint.ErrNotFound] when
// there is none. Any failure to read matches [checkpoint.ErrUnavailable] instead.
func (s *Store) GetLease(ctx context.Context, key checkpoint.ShardKey) (checkpoint.Lease, error) {
	if err := key.Validate(); err != nil {
		return checkpoint.Lease{}, wrap(opGetLease, err)
	}
	row, err := s.client.HGetAll(ctx, leaseKey(s.keys.tag(key.Group, key.Stream), key.Shard)).Result()
	if err != nil {
		return checkpoint.Lease{}, backendError(opGetLease, err)
	}
	if len(row) == 0 {
		return checkpoint.Lease{}, fmt.Errorf("checkpoint/redis: %s %s/%s/%s: %w",
			opGetLease, key.Group, key.Stream, key.Shard, checkpoint.ErrNotFound)
	}
	return parseLease(opGetLease, key, row)
}

// ListLeases returns every lease row of group and stream, sorted by shard ID. It reads the
// index set, then the rows in pipelines; an index entry whose row is gone is skipped.
func (s *Store) ListLeases(ctx context.Context, group, stream string) ([]checkpoint.Lease, error) {
	if err := validateGroupStream(opListLeases, group, stream); err != nil {
		return nil, err
	}
	tag := s.keys.tag(group, stream)
	rows, err := s.readRows(ctx, opListLeases, leaseIndex(tag), func(shard string) string { return leaseKey(tag, shard) })
	if err != nil {
		return nil, err
	}
	leases := make([]checkpoint.Lease, 0, len(rows))
	for _, r := range rows {
		l, err := parseLease(opListLeases, checkpoint.ShardKey{Group: group, Stream: stream, Shard: r.member}, r.fields)
		if err != nil {
			return nil, err
		}
		leases = append(leases, l)
	}
	return leases, nil
}

type indexedRow struct {
	member string
	fields map[string]string
}

// readRows reads the members of index and the hash of each, sorted by member, skipping
// members whose hash does not exist.
func (s *Store) readRows(ctx context.Context, op, index string, key func(member string) string) ([]indexedRow, error) {
	members, err := s.client.SMembers(ctx, index).Result()
	if err != nil {
		return nil, backendError(op, err)
	}
	slices.Sort(members)
	rows := make([]indexedRow, 0, len(members))
	cmds := make([]*goredis.MapStringStringCmd, 0, min(len(members), listChunk))
	for chunk := range slices.Chunk(members, listChunk) {
		cmds = cmds[:0]
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, m := range chunk {
				cmds = append(cmds, p.HGetAll(ctx, key(m)))
			}
			return nil
		})
		if err != nil {
			return nil, backendError(op, err)
		}
		for i, cmd := range cmds {
			if fields := cmd.Val(); len(fields) > 0 {
				rows = append(rows, indexedRow{member: chunk[i], fields: fields})
			}
		}
	}
	return rows, nil
}

// TakeLease makes worker the owner of key with a fresh random token, conditional on the stored
// counter being counter (0 for a key without a row, which it creates). It fails with
// [checkpoint.ErrConflict] when the counter differs.
func (s *Store) TakeLease(ctx context.Context, key checkpoint.ShardKey, worker string, counter int64) (checkpoint.Lease, error) {
	if err := key.Validate(); err != nil {
		return checkpoint.Lease{}, wrap(opTakeLease, err)
	}
	if err := checkpoint.ValidateWorker(key.Group, key.Stream, worker); err != nil {
		return checkpoint.Lease{}, wrap(opTakeLease, err)
	}
	tag := s.keys.tag(key.Group, key.Stream)
	reply, err := s.run(ctx, opTakeLease, takeScript,
		[]string{leaseKey(tag, key.Shard), leaseIndex(tag)},
		key.Shard, worker, strconv.FormatInt(counter, 10), rand.Text())
	if err != nil {
		return checkpoint.Lease{}, err
	}
	return parseReplyLease(opTakeLease, key, reply)
}

// RenewLease increments the counter of a lease the caller holds and returns the new row. It
// fails with [checkpoint.ErrLeaseLost] when the stored owner or token differ from lease's, or
// the row is gone.
func (s *Store) RenewLease(ctx context.Context, lease checkpoint.Lease) (checkpoint.Lease, error) {
	if err := checkHandle(opRenewLease, lease); err != nil {
		return checkpoint.Lease{}, err
	}
	reply, err := s.run(ctx, opRenewLease, renewScript,
		[]string{leaseKey(s.keys.tag(lease.Group, lease.Stream), lease.Shard)},
		lease.Owner, lease.Token)
	if err != nil {
		return checkpoint.Lease{}, err
	}
	return parseReplyLease(opRenewLease, lease.ShardKey, reply)
}

// Checkpoint stores pos for a lease the caller holds, fenced by owner and token
// ([checkpoint.ErrLeaseLost]). pos must be valid and not zero ([checkpoint.ErrInvalid]) and not
// behind the stored position ([checkpoint.ErrPositionBehind]); the counter does not change.
func (s *Store) Checkpoint(ctx context.Context, lease checkpoint.Lease, pos checkpoint.Position) error {
	if err := checkHandle(opCheckpoint, lease); err != nil {
		return err
	}
	if err := pos.Validate(); err != nil {
		return wrap(opCheckpoint, err)
	}
	if pos.IsZero() {
		return fmt.Errorf("checkpoint/redis: %s: %w: zero position", opCheckpoint, checkpoint.ErrInvalid)
	}
	seq, sub, end, order := positionArgs(pos)
	_, err := s.run(ctx, opCheckpoint, checkpointScript,
		[]string{leaseKey(s.keys.tag(lease.Group, lease.Stream), lease.Shard)},
		lease.Owner, lease.Token, seq, sub, end, order)
	return err
}

// ReleaseLease clears the owner, token and pending owner of a lease the caller holds and
// increments the counter; a non-zero final position is checkpointed in the same atomic write
// under the rules of [Store.Checkpoint]. When final is behind the stored position nothing
// changes: the call fails with [checkpoint.ErrPositionBehind] and the caller still holds the
// lease.
func (s *Store) ReleaseLease(ctx context.Context, lease checkpoint.Lease, final checkpoint.Position) error {
	if err := checkHandle(opReleaseLease, lease); err != nil {
		return err
	}
	if err := final.Validate(); err != nil {
		return wrap(opReleaseLease, err)
	}
	var seq, sub, end, order string
	if !final.IsZero() {
		seq, sub, end, order = positionArgs(final)
	}
	_, err := s.run(ctx, opReleaseLease, releaseScript,
		[]string{leaseKey(s.keys.tag(lease.Group, lease.Stream), lease.Shard)},
		lease.Owner, lease.Token, seq, sub, end, order, rand.Text())
	return err
}

// RequestHandoff sets the pending owner of key to claimant and increments the counter,
// conditional on the stored owner being owner and the counter being counter
// ([checkpoint.ErrConflict] otherwise: a missing row, a free lease or an empty owner included).
func (s *Store) RequestHandoff(ctx context.Context, key checkpoint.ShardKey, owner, claimant string, counter int64) error {
	if err := key.Validate(); err != nil {
		return wrap(opRequestHandoff, err)
	}
	if err := checkpoint.ValidateWorker(key.Group, key.Stream, claimant); err != nil {
		return wrap(opRequestHandoff, err)
	}
	_, err := s.run(ctx, opRequestHandoff, handoffScript,
		[]string{leaseKey(s.keys.tag(key.Group, key.Stream), key.Shard)},
		owner, claimant, strconv.FormatInt(counter, 10), rand.Text())
	return err
}

// DeleteLease removes the row of key and its index entry, conditional on the stored counter
// being counter ([checkpoint.ErrConflict] otherwise, a missing row included).
func (s *Store) DeleteLease(ctx context.Context, key checkpoint.ShardKey, counter int64) error {
	if err := key.Validate(); err != nil {
		return wrap(opDeleteLease, err)
	}
	tag := s.keys.tag(key.Group, key.Stream)
	_, err := s.run(ctx, opDeleteLease, deleteScript,
		[]string{leaseKey(tag, key.Shard), leaseIndex(tag)},
		key.Shard, strconv.FormatInt(counter, 10))
	return err
}

// checkHandle validates the key of an owner's handle. A handle without owner or token (the
// Lease of a free row, or the zero Lease) holds nothing: ErrLeaseLost, without a round trip.
func checkHandle(op string, lease checkpoint.Lease) error {
	if err := lease.ShardKey.Validate(); err != nil {
		return wrap(op, err)
	}
	if lease.Owner == "" || lease.Token == "" {
		return fmt.Errorf("checkpoint/redis: %s: %w: the handle has no owner or token", op, checkpoint.ErrLeaseLost)
	}
	return nil
}

// positionArgs returns the stored fields of a valid, non-zero pos: sequence number,
// sub-sequence number, shard-end flag and order key.
func positionArgs(pos checkpoint.Position) (seq, sub, end, order string) {
	if pos.ShardEnd {
		return "", "0", "1", pos.OrderKey()
	}
	return pos.SequenceNumber, strconv.FormatInt(pos.SubSequenceNumber, 10), "0", pos.OrderKey()
}

// parseReplyLease parses the HGETALL array a script returned after its status.
func parseReplyLease(op string, key checkpoint.ShardKey, reply []any) (checkpoint.Lease, error) {
	if len(reply) != 1 {
		return checkpoint.Lease{}, fmt.Errorf("checkpoint/redis: %s: script reply has %d elements, want the row", op, len(reply))
	}
	flat, ok := reply[0].([]any)
	if !ok || len(flat)%2 != 0 {
		return checkpoint.Lease{}, fmt.Errorf("checkpoint/redis: %s: malformed row in script reply", op)
	}
	row := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, ok1 := flat[i].(string)
		v, ok2 := flat[i+1].(string)
		if !ok1 || !ok2 {
			return checkpoint.Lease{}, fmt.Errorf("checkpoint/redis: %s: malformed row in script reply", op)
		}
		row[k] = v
	}
	return parseLease(op, key, row)
}

// parseLease builds a Lease from the hash fields of its row.
func parseLease(op string, key checkpoint.ShardKey, row map[string]string) (checkpoint.Lease, error) {
	malformed := func(field string, err error) error {
		return fmt.Errorf("checkpoint/redis: %s: malformed lease row %s/%s/%s: field %s: %v",
			op, key.Group, key.Stream, key.Shard, field, err)
	}
	counter, err := strconv.ParseInt(row[fieldCounter], 10, 64)
	if err != nil {
		return checkpoint.Lease{}, malformed(fieldCounter, err)
	}
	l := checkpoint.Lease{
		ShardKey:     key,
		Owner:        row[fieldOwner],
		Token:        row[fieldToken],
		Counter:      counter,
		PendingOwner: row[fieldPending],
	}
	switch {
	case row[fieldEnd] == "1":
		l.Checkpoint = checkpoint.Position{ShardEnd: true}
	case row[fieldSeq] != "":
		sub, err := strconv.ParseInt(row[fieldSubSeq], 10, 64)
		if err != nil {
			return checkpoint.Lease{}, malformed(fieldSubSeq, err)
		}
		l.Checkpoint = checkpoint.Position{SequenceNumber: row[fieldSeq], SubSequenceNumber: sub}
	}
	if err := l.Checkpoint.Validate(); err != nil {
		return checkpoint.Lease{}, malformed(fieldSeq, err)
	}
	if want := l.Checkpoint.OrderKey(); row[fieldOrder] != want {
		return checkpoint.Lease{}, malformed(fieldOrder, fmt.Errorf("%q does not match the position (want %q)", row[fieldOrder], want))
	}
	return l, nil
}
