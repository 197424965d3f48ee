// Package checkpoint keeps where a consumer group has read each shard, and which worker owns
// which shard, in a [Store]:
//
//	store := checkpoint.NewMemory() // or a Redis or DynamoDB store
//	key := checkpoint.ShardKey{Group: "billing", Stream: "orders", Shard: "shardId-000000000000"}
//
//	lease, err := store.TakeLease(ctx, key, "worker-1", 0) // 0: the row does not exist yet
//	if err != nil {
//		return err // errors.Is(err, checkpoint.ErrConflict): another worker was first
//	}
//	// ... process records, then save the position of the last one done:
//	err = store.Checkpoint(ctx, lease, checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: sub})
//	if errors.Is(err, checkpoint.ErrLeaseLost) {
//		return err // another worker owns the shard now: stop reading it
//	}
//	// Meanwhile a loop renews the lease, whatever the handler is doing:
//	lease, err = store.RenewLease(ctx, lease)
//	// On shutdown, save the final position and free the lease in one write:
//	err = store.ReleaseLease(ctx, lease, final)
//
// The consumer does all of this for its users; the package is for those who write a store,
// test against one, or inspect a group's progress.
//
// # Rows
//
// A store holds one lease row per (consumer group, stream, shard) and one worker row per
// (consumer group, stream, worker). One Redis database or DynamoDB table serves many groups
// and streams; rows of different keys never interact, whatever characters the names contain.
//
// A lease row holds the owner, a tenure token, a counter, the checkpoint [Position] and an
// optional pending owner. A Position is a sequence number (a decimal integer of up to 129
// digits, compared as an integer) and a sub-sequence number (the user record inside a KPL
// aggregate); Position{ShardEnd: true} marks a shard read to its end.
//
// # Lease protocol
//
// Liveness is judged the way the KCL judges it: not by timestamps written by other hosts, but
// by a counter that the owner moves on every renewal. An observer remembers, per lease, the
// counter it last saw and when it first saw it on its own monotonic clock ([Liveness]); a
// lease whose counter has not moved for the lease duration is expired for that observer. Host
// clocks never need to agree, and the stores have no clock at all.
//
//   - take: [Leases.TakeLease] of a free lease, an expired one or one being stolen, conditional
//     on the counter the taker read (0 for a shard without a row). It sets a new random token
//     and moves the counter, so of many workers that read the same row exactly one wins; the
//     others get [ErrConflict].
//   - renew: [Leases.RenewLease] moves the counter, conditional on owner and token. It returns
//     the row, whose PendingOwner tells the owner that another worker asked for the lease.
//   - checkpoint: [Leases.Checkpoint], conditional on owner and token and on the position not
//     being behind the stored one. It leaves the counter alone: the token, not the counter,
//     fences owner writes, so renewals and checkpoints never race each other.
//   - steal: a take with the counter read from a lease another worker holds. The old owner's
//     next renew or checkpoint fails with [ErrLeaseLost] and it stops.
//   - graceful handoff: the claimant calls [Leases.RequestHandoff]; the owner sees the pending
//     owner on its next renewal, makes its final checkpoint and releases with
//     [Leases.ReleaseLease] (one write for both); the claimant takes the free lease.
//   - release: clears owner, token and pending owner, keeps the position, moves the counter.
//   - shard end: a checkpoint of Position{ShardEnd: true}. No other position is accepted
//     afterwards; a child shard's lease becomes takeable once its parents have it.
//   - workers: every worker moves its own counter with [Workers.Heartbeat]; peers judge it with
//     a [Liveness] like a lease, count the live ones, and prune dead rows with
//     [Workers.RemoveWorker], conditional on the counter they judged. Each heartbeat also
//     writes the worker's instance (a fresh value per process) and returns the row as it was
//     before, so a process that finds another instance there learns that a second live
//     process runs with its worker ID.
//
// # Guarantees
//
// Every store, memory, Redis and DynamoDB alike, passes one conformance suite
// ([github.com/shardline/kinesis/checkpoint/checkpointtest]) and so guarantees:
//
//   - Positions never move backwards, and no TTL or expiry ever deletes one; only
//     [Leases.DeleteLease], conditional on the counter, removes a row.
//   - Every write is one atomic conditional write: of racing writers, those whose condition
//     no longer holds fail and change nothing.
//   - A worker that lost a lease (stolen, expired and taken, released, or held in an earlier
//     tenure) cannot change the row: every owner write fails with [ErrLeaseLost].
//   - Errors are values to branch on with errors.Is: [ErrNotFound], [ErrLeaseLost],
//     [ErrConflict], [ErrPositionBehind], [ErrInvalid], and [ErrUnavailable] for a store that
//     could not answer, through [UnavailableError], which still unwraps to the backend's error.
//
// Leases give at-least-once processing, not exactly-once: records processed after the last
// checkpoint of a worker that died or lost its lease are processed again by the next owner.
package checkpoint
