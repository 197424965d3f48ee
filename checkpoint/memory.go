package checkpoint

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// Memory is a [Store] that keeps everything in process memory: for tests, examples and
// single-process consumers that may re-read a shard after a restart. It is the reference
// implementation of the Store contract; the Redis and DynamoDB stores behave the same way.
//
// A Memory is safe for concurrent use. Methods return copies: changing a returned Lease or
// Worker never changes the store. The zero Memory is an empty store, like [NewMemory]'s.
type Memory struct {
	mu      sync.Mutex
	leases  map[scope]map[string]Lease  // shard ID → row
	workers map[scope]map[string]Worker // worker ID → row
}

// scope is the (group, stream) pair that partitions the rows of one store.
type scope struct{ group, stream string }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		leases:  make(map[scope]map[string]Lease),
		workers: make(map[scope]map[string]Worker),
	}
}

// GetLease implements [Leases].
func (m *Memory) GetLease(ctx context.Context, key ShardKey) (Lease, error) {
	if err := begin(ctx, "GetLease", key.Validate()); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[scopeOf(key)][key.Shard]
	if !ok {
		return Lease{}, fmt.Errorf("%w: no lease row for %s", ErrNotFound, describe(key))
	}
	return l, nil
}

// ListLeases implements [Leases].
func (m *Memory) ListLeases(ctx context.Context, group, stream string) ([]Lease, error) {
	if err := begin(ctx, "ListLeases", validateScope(group, stream)); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.leases[scope{group, stream}]
	out := make([]Lease, 0, len(rows))
	for _, l := range rows {
		out = append(out, l)
	}
	return out, nil
}

// TakeLease implements [Leases]. A counter that matches no row (a negative one, or a non-zero
// one for a row that does not exist) fails with [ErrConflict].
func (m *Memory) TakeLease(ctx context.Context, key ShardKey, worker string, counter int64) (Lease, error) {
	err := key.Validate()
	if err == nil && worker == "" {
		err = invalid("empty worker ID")
	}
	if err := begin(ctx, "TakeLease", err); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := scopeOf(key)
	l, ok := m.leases[s][key.Shard]
	switch {
	case !ok && counter != 0:
		return Lease{}, fmt.Errorf("%w: %s has no lease row, want counter 0, got %d", ErrConflict, describe(key), counter)
	case ok && l.Counter != counter:
		return Lease{}, fmt.Errorf("%w: %s counter is %d, not %d", ErrConflict, describe(key), l.Counter, counter)
	}
	l.ShardKey = key
	l.Owner = worker
	l.Token = newToken()
	l.Counter++
	l.PendingOwner = ""
	m.putLease(s, l)
	return l, nil
}

// RenewLease implements [Leases].
func (m *Memory) RenewLease(ctx context.Context, lease Lease) (Lease, error) {
	if err := begin(ctx, "RenewLease", lease.ShardKey.Validate()); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.held(lease)
	if err != nil {
		return Lease{}, err
	}
	l.Counter++
	m.putLease(scopeOf(l.ShardKey), l)
	return l, nil
}

// Checkpoint implements [Leases]. It leaves the counter as it is.
func (m *Memory) Checkpoint(ctx context.Context, lease Lease, pos Position) error {
	err := lease.ShardKey.Validate()
	if err == nil {
		err = validateCheckpoint(pos)
	}
	if err := begin(ctx, "Checkpoint", err); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.held(lease)
	if err != nil {
		return err
	}
	if err := notBehind(l, pos); err != nil {
		return err
	}
	l.Checkpoint = pos
	m.putLease(scopeOf(l.ShardKey), l)
	return nil
}

// ReleaseLease implements [Leases].
func (m *Memory) ReleaseLease(ctx context.Context, lease Lease, final Position) error {
	err := lease.ShardKey.Validate()
	if err == nil {
		err = final.Validate()
	}
	if err := begin(ctx, "ReleaseLease", err); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.held(lease)
	if err != nil {
		return err
	}
	if !final.IsZero() {
		if err := notBehind(l, final); err != nil {
			return err
		}
		l.Checkpoint = final
	}
	l.Owner, l.Token, l.PendingOwner = "", "", ""
	l.Counter++
	m.putLease(scopeOf(l.ShardKey), l)
	return nil
}

// RequestHandoff implements [Leases]. A missing row, a free lease (owner "") and a changed
// counter or owner all fail with [ErrConflict].
func (m *Memory) RequestHandoff(ctx context.Context, key ShardKey, owner, claimant string, counter int64) error {
	err := key.Validate()
	if err == nil && claimant == "" {
		err = invalid("empty claimant worker ID")
	}
	if err := begin(ctx, "RequestHandoff", err); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := scopeOf(key)
	l, ok := m.leases[s][key.Shard]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s has no lease row", ErrConflict, describe(key))
	case l.Owner == "" || l.Owner != owner:
		return fmt.Errorf("%w: %s is held by %q, not %q", ErrConflict, describe(key), l.Owner, owner)
	case l.Counter != counter:
		return fmt.Errorf("%w: %s counter is %d, not %d", ErrConflict, describe(key), l.Counter, counter)
	}
	l.PendingOwner = claimant
	l.Counter++
	m.putLease(s, l)
	return nil
}

// DeleteLease implements [Leases]. A missing row fails with [ErrConflict], like a changed
// counter: the row the caller read is not there any more.
func (m *Memory) DeleteLease(ctx context.Context, key ShardKey, counter int64) error {
	if err := begin(ctx, "DeleteLease", key.Validate()); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := scopeOf(key)
	l, ok := m.leases[s][key.Shard]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s has no lease row", ErrConflict, describe(key))
	case l.Counter != counter:
		return fmt.Errorf("%w: %s counter is %d, not %d", ErrConflict, describe(key), l.Counter, counter)
	}
	delete(m.leases[s], key.Shard)
	if len(m.leases[s]) == 0 {
		delete(m.leases, s)
	}
	return nil
}

// Heartbeat implements [Workers].
func (m *Memory) Heartbeat(ctx context.Context, w Worker) (Worker, error) {
	if err := begin(ctx, "Heartbeat", ValidateHeartbeat(w)); err != nil {
		return Worker{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := scope{w.Group, w.Stream}
	prev, ok := m.workers[s][w.ID]
	if !ok {
		prev = Worker{Group: w.Group, Stream: w.Stream, ID: w.ID}
	}
	next := prev
	next.Instance = w.Instance
	next.Counter++
	if m.workers == nil {
		m.workers = make(map[scope]map[string]Worker)
	}
	if m.workers[s] == nil {
		m.workers[s] = make(map[string]Worker)
	}
	m.workers[s][w.ID] = next
	return prev, nil
}

// ListWorkers implements [Workers].
func (m *Memory) ListWorkers(ctx context.Context, group, stream string) ([]Worker, error) {
	if err := begin(ctx, "ListWorkers", validateScope(group, stream)); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.workers[scope{group, stream}]
	out := make([]Worker, 0, len(rows))
	for _, w := range rows {
		out = append(out, w)
	}
	return out, nil
}

// RemoveWorker implements [Workers]. A missing row fails with [ErrConflict].
func (m *Memory) RemoveWorker(ctx context.Context, w Worker) error {
	if err := begin(ctx, "RemoveWorker", ValidateWorker(w.Group, w.Stream, w.ID)); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := scope{w.Group, w.Stream}
	stored, ok := m.workers[s][w.ID]
	switch {
	case !ok:
		return fmt.Errorf("%w: worker %q of %s/%s has no row", ErrConflict, w.ID, w.Group, w.Stream)
	case stored.Counter != w.Counter:
		return fmt.Errorf("%w: worker %q counter is %d, not %d", ErrConflict, w.ID, stored.Counter, w.Counter)
	}
	delete(m.workers[s], w.ID)
	if len(m.workers[s]) == 0 {
		delete(m.workers, s)
	}
	return nil
}

// held returns the stored row of lease when the caller still holds it: the row exists, has an
// owner, and Owner and Token are the handle's. m.mu must be held.
func (m *Memory) held(lease Lease) (Lease, error) {
	l, ok := m.leases[scopeOf(lease.ShardKey)][lease.Shard]
	if !ok || l.Owner == "" || l.Owner != lease.Owner || l.Token != lease.Token {
		return Lease{}, fmt.Errorf("%w: %s is not held by %q with this token", ErrLeaseLost, describe(lease.ShardKey), lease.Owner)
	}
	return l, nil
}

// putLease stores l. m.mu must be held.
func (m *Memory) putLease(s scope, l Lease) {
	if m.leases == nil {
		m.leases = make(map[scope]map[string]Lease)
	}
	rows := m.leases[s]
	if rows == nil {
		rows = make(map[string]Lease)
		m.leases[s] = rows
	}
	rows[l.Shard] = l
}

func scopeOf(k ShardKey) scope { return scope{k.Group, k.Stream} }

// describe names k in error messages.
func describe(k ShardKey) string {
	return fmt.Sprintf("shard %q of group %q, stream %q", k.Shard, k.Group, k.Stream)
}

// begin returns the validation error err, or an [UnavailableError] for op when ctx is done:
// a store that cannot answer says so the same way whatever the reason.
func begin(ctx context.Context, op string, err error) error {
	if err != nil {
		return err
	}
	return Unavailable(op, ctx.Err())
}

// validateScope returns an error matching ErrInvalid when group or stream is empty.
func validateScope(group, stream string) error {
	return ShardKey{Group: group, Stream: stream, Shard: "-"}.Validate()
}

// validateCheckpoint returns an error matching ErrInvalid unless pos is a valid non-zero
// position: checkpointing "nothing processed" is a caller bug.
func validateCheckpoint(pos Position) error {
	if pos.IsZero() {
		return invalid("zero position: nothing to checkpoint")
	}
	return pos.Validate()
}

// notBehind returns an error matching ErrPositionBehind when pos is before l's checkpoint.
func notBehind(l Lease, pos Position) error {
	if pos.Compare(l.Checkpoint) < 0 {
		return fmt.Errorf("%w: %s: %q is before %q", ErrPositionBehind, describe(l.ShardKey), pos, l.Checkpoint)
	}
	return nil
}

// newToken returns a tenure token: 16 random bytes in hex.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}
