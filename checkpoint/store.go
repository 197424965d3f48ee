package checkpoint

import "context"

// ShardKey names one shard of one stream as one consumer group sees it. One store serves many
// groups and streams; rows of different keys never interact.
type ShardKey struct {
	Group  string // consumer group (the KCL's application name)
	Stream string // stream name
	Shard  string // shard ID, such as "shardId-000000000000"
}

// Lease is one row of the lease table: who owns the shard and where the group has read it to.
//
// A Lease value returned by TakeLease or RenewLease is the owner's handle: Checkpoint,
// RenewLease and ReleaseLease succeed only while Owner and Token still match the stored row.
type Lease struct {
	ShardKey
	// Owner is the worker ID holding the lease, or "" when the lease is free.
	Owner string
	// Token is the tenure token: a fresh random value on every take, so a worker that lost the
	// lease and took it back later cannot use a handle from its earlier tenure.
	Token string
	// Counter increases on every take, renewal, release and handoff request. Observers judge
	// liveness by watching it (see [Liveness]); takes and steals are conditional on it.
	Counter int64
	// Checkpoint is the last position the group processed, or the zero Position.
	Checkpoint Position
	// PendingOwner is a worker that asked the owner to hand the lease over gracefully, or "".
	PendingOwner string
}

// Held reports whether some worker owns the lease.
func (l Lease) Held() bool { return l.Owner != "" }

// Worker is one row of the worker registry. Workers of a group find each other through it to
// aim at an even share of the leases, and a worker finds out through it that another live
// process was started with its ID.
type Worker struct {
	Group  string // consumer group
	Stream string // stream name
	ID     string // worker ID, unique in the group (such as host name and process ID)
	// Instance identifies one run of the worker (a fresh value each time a consumer starts), so
	// that two live processes configured with one ID can be told apart. Stores keep it as an
	// opaque string.
	Instance string
	// Counter increases on every heartbeat; observers judge liveness by it (see [Liveness]).
	Counter int64
}

// Leases is the lease and checkpoint half of a [Store].
//
// Every write is conditional. Writes by an owner (RenewLease, Checkpoint, ReleaseLease) are
// fenced by Owner and Token and fail with [ErrLeaseLost] when either changed. Writes by a
// claimant (TakeLease, RequestHandoff, DeleteLease) are conditional on what the caller read and
// fail with [ErrConflict] when the row changed since.
//
// Errors, in the order they are decided:
//   - a malformed argument (see [ShardKey.Validate], [Position.Validate]) fails with
//     [ErrInvalid] before the store is asked;
//   - a store that cannot answer, or a ctx that ends first, fails with an error matching
//     [ErrUnavailable] (and ctx's error); nothing can then be said about the write;
//   - an owner write whose handle does not hold the lease fails with [ErrLeaseLost], whatever
//     else is wrong with it (a position behind included): a fenced worker always learns that
//     it must stop. A handle holds the lease when the row exists and its Owner (non-empty)
//     and Token are the handle's; the handle's Counter does not matter;
//   - then the position rules ([ErrPositionBehind]) and the claimant's conditions
//     ([ErrConflict]; a missing row fails them too, except a take with counter 0).
//
// A write that fails changes nothing.
//
// Clients resend a write whose reply was lost (go-redis retries, the AWS SDK's retryer), so a
// conditional write may run twice. TakeLease, ReleaseLease and RequestHandoff must report the
// outcome of the first run: a store recognises its own earlier write (for example by a
// per-call nonce stored in the row) instead of reporting ErrConflict or ErrLeaseLost for a
// write that succeeded. RenewLease and Checkpoint are safe to resend as they are.
type Leases interface {
	// GetLease returns the lease row of key, or an error matching [ErrNotFound] when there is
	// none. A store that cannot answer returns an error matching [ErrUnavailable], never
	// ErrNotFound.
	GetLease(ctx context.Context, key ShardKey) (Lease, error)

	// ListLeases returns every lease row of group and stream, in no particular order, however
	// many pages the store reads them in; rows of other groups and streams never appear.
	ListLeases(ctx context.Context, group, stream string) ([]Lease, error)

	// TakeLease makes worker the owner of key with a new token and Counter+1, keeping the
	// checkpoint and clearing PendingOwner. It is conditional on the stored counter being
	// counter (0 for a row that does not exist yet, which it then creates). The caller decides
	// whether taking is right: the lease is free, expired in its own judgement, or being stolen.
	// A counter that does not match fails with [ErrConflict], a non-zero one for a missing row
	// included.
	TakeLease(ctx context.Context, key ShardKey, worker string, counter int64) (Lease, error)

	// RenewLease increments the counter of a lease the caller holds and returns the new row,
	// whose PendingOwner tells the owner that another worker asked for the lease. The token is
	// unchanged. A missing row fails with [ErrLeaseLost].
	RenewLease(ctx context.Context, lease Lease) (Lease, error)

	// Checkpoint stores pos for a lease the caller holds. A pos behind the stored one fails
	// with [ErrPositionBehind]; the same pos again succeeds. Position{ShardEnd: true} marks the
	// shard finished, after which no other position is accepted. The zero Position fails with
	// [ErrInvalid]. Checkpoint changes neither the counter nor the token: renewals, not
	// checkpoints, show that the owner is alive, and the token alone fences, so a handle whose
	// counter went stale through renewals still checkpoints.
	Checkpoint(ctx context.Context, lease Lease, pos Position) error

	// ReleaseLease clears the owner, token and pending owner of a lease the caller holds and
	// increments the counter. When final is not the zero Position it is checkpointed in the
	// same conditional write (under the rules of Checkpoint); the stored position is kept
	// otherwise. A final position behind the stored one fails with [ErrPositionBehind] and the
	// lease stays held.
	ReleaseLease(ctx context.Context, lease Lease, final Position) error

	// RequestHandoff asks the current owner of key to hand the lease to claimant: it sets
	// PendingOwner and increments the counter, conditional on the stored owner being owner
	// and the counter being counter. A missing row, a free lease and a changed owner or counter
	// all fail with [ErrConflict]. The token is unchanged: the owner's handle stays valid, so it
	// can make its final checkpoint and release. TakeLease and ReleaseLease clear PendingOwner.
	RequestHandoff(ctx context.Context, key ShardKey, owner, claimant string, counter int64) error

	// DeleteLease removes the row of key, conditional on the stored counter being counter. It
	// is for rows of shards that left the stream's retention; positions are never deleted
	// otherwise. A missing row fails with [ErrConflict]: it is not the row the caller read.
	DeleteLease(ctx context.Context, key ShardKey, counter int64) error
}

// Workers is the worker-registry half of a [Store].
type Workers interface {
	// Heartbeat creates or updates the row of w.ID in w.Group and w.Stream, increments its
	// counter by one and sets its Instance to w.Instance, atomically, and returns the row as it
	// was just before (Counter 0 and Instance "" when there was no row). Concurrent heartbeats
	// never return the same previous counter. An empty group, stream, ID or instance fails with
	// [ErrInvalid] (see [ValidateHeartbeat]); w.Counter is ignored.
	//
	// prev is what lets a worker notice a second live process with its ID: once this process
	// has heartbeated, a prev.Instance other than its own was written by someone else since.
	// A heartbeat that a client resends after losing the reply (go-redis retries, the AWS SDK's
	// retryer) runs twice: the counter moves by two and the resend returns this instance's own
	// value as prev, which is harmless, as it names no other process.
	Heartbeat(ctx context.Context, w Worker) (prev Worker, err error)

	// ListWorkers returns every worker row of group and stream, live or not, each with the
	// counter and instance of its last heartbeat: the caller judges liveness from the counters
	// with a [Liveness].
	ListWorkers(ctx context.Context, group, stream string) ([]Worker, error)

	// RemoveWorker deletes the row of w conditional on its counter still being w.Counter, so a
	// worker leaving removes its own row and observers prune rows that stopped moving without
	// racing a worker that came back. A missing row or a changed counter fails with
	// [ErrConflict].
	RemoveWorker(ctx context.Context, w Worker) error
}

// Store keeps a consumer group's positions, leases and worker registry. Implementations are
// safe for concurrent use, never move a position backwards and never expire a position. Every
// implementation passes the conformance suite,
// [github.com/shardline/kinesis/checkpoint/checkpointtest.Run].
type Store interface {
	Leases
	Workers
}
