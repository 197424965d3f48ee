// Package redis is a [checkpoint.Store] on Redis: the positions, leases and worker registry
// of Shardline consumers, kept in hashes and changed only by Lua scripts, so every
// compare-and-set is atomic on the server.
//
//	import (
//		goredis "github.com/redis/go-redis/v9"
//		redisstore "github.com/shardline/kinesis/checkpoint/redis"
//	)
//
//	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
//	defer client.Close()
//	store, err := redisstore.New(client, redisstore.WithPrefix("billing"))
//	if err != nil {
//		return err
//	}
//	key := checkpoint.ShardKey{Group: "billing", Stream: "orders", Shard: "shardId-000000000000"}
//	lease, err := store.TakeLease(ctx, key, "worker-1", 0) // 0: the row does not exist yet
//	if err != nil {
//		return err
//	}
//	err = store.Checkpoint(ctx, lease, checkpoint.Position{SequenceNumber: "49590338271490256608559692538361571095921575989136588898"})
//
// # Clients
//
// [New] takes any [goredis.UniversalClient]: a standalone *goredis.Client, a sentinel-backed
// one from goredis.NewFailoverClient, or a *goredis.ClusterClient. Addresses, TLS, AUTH and
// ACL users, timeouts, pool size and retries are the client's options; the store never closes
// the client.
//
// Two client options matter for a checkpoint store. go-redis bounds a call by ReadTimeout and
// WriteTimeout (3 s by default) and ignores the context's deadline on the socket unless
// ContextTimeoutEnabled is set: set it, so a consumer shutting down or a renewal loop with a
// deadline is not held by a server that stopped answering. And a cluster or failover client
// that routes reads to replicas (ReadOnly, RouteByLatency, RouteRandomly) serves GetLease,
// ListLeases and ListWorkers from replicas that may lag; writes always go to the primary and
// their conditions are checked there, so a stale read costs at most a refused take.
//
// # Key layout
//
// With prefix p (default "shardline", see [WithPrefix]), consumer group g, stream s, shard h
// and worker w:
//
//	p:{G/S}:lease:h    hash   one lease row: owner, token, counter, seq, subseq, end, order,
//	                          pending, op
//	p:{G/S}:leases     set    the shard IDs that have a lease row
//	p:{G/S}:worker:w   hash   one worker row: counter, instance
//	p:{G/S}:workers    set    the worker IDs that have a row
//
// G and S are g and s with '%', '/', ':', '{' and '}' percent-encoded (%25, %2F, %3A, %7B,
// %7D), so the {G/S} section is unambiguous and is the key's Redis Cluster hash tag: every key
// of one group and stream lives in one slot, and a script may update a row and its index set
// together. Shard and worker IDs end their keys and are stored as they are. A prefix that
// already ends with ':' gets no second one; a prefix may not contain '{' or '}'.
//
// Lease row fields: owner and token are absent while the lease is free; counter is a decimal
// int64 changed with HINCRBY; seq, subseq and end ("1" for SHARD_END) hold the checkpoint and
// order its [checkpoint.Position.OrderKey]; pending is the worker that asked for a handoff; op
// is the nonce of the last take, release or handoff request (see Retries below).
//
// Worker row fields: counter is a decimal int64 changed with HINCRBY; instance is the
// [checkpoint.Worker.Instance] of the last heartbeat. A row written before instances existed
// has no instance field and reads as instance "" until its next heartbeat writes one.
//
// # Guarantees
//
//   - Every conditional write is one Lua script that touches only the keys it is given, so
//     the condition and the write are atomic, also on Redis Cluster. Scripts run with EVALSHA
//     and fall back to EVAL when the server's script cache is empty (after a restart or
//     SCRIPT FLUSH).
//   - Owner writes (RenewLease, Checkpoint, ReleaseLease) are fenced by owner and tenure
//     token: a worker that lost the lease changes nothing and gets [checkpoint.ErrLeaseLost].
//     Claimant writes (TakeLease, RequestHandoff, DeleteLease, RemoveWorker) are conditional
//     on the counter the caller read and fail with [checkpoint.ErrConflict].
//   - Positions never move backwards: the script compares order keys byte by byte (Lua's own
//     string comparison follows the server's locale, so it is not used).
//   - Nothing has a TTL, ever. Run Redis with maxmemory-policy noeviction (or a volatile-*
//     policy): an allkeys-* eviction policy could drop positions.
//   - Errors: a failure to reach the server or to get its answer (refused or reset
//     connections, timeouts, a closed client, a cancelled context, and replies such as
//     LOADING, READONLY, CLUSTERDOWN, TRYAGAIN, BUSY or OOM) matches
//     [checkpoint.ErrUnavailable], and errors.As still reaches the go-redis error (and
//     errors.Is reaches context.Canceled). Such a failure is never reported as
//     [checkpoint.ErrNotFound]. Malformed arguments match [checkpoint.ErrInvalid] and never
//     reach the server.
//
// # Retries
//
// go-redis sends a command again (up to the client's MaxRetries) when the connection broke or
// timed out after the command was written, so a script can run twice for one call. Renewals
// and heartbeats running twice only move the counter by two (a resent heartbeat returns its
// own instance as the previous one), and a checkpoint is idempotent.
// TakeLease, ReleaseLease and RequestHandoff send a nonce that is fresh per call and the same in
// every resend and record it in the row; a resend that finds its own nonce reports the success
// of the first run instead of a false ErrConflict or ErrLeaseLost. A DeleteLease or
// RemoveWorker whose reply was lost may report ErrConflict for a row it did delete; re-reading
// shows the row gone.
//
// # Durability
//
// The store is as durable as the server's configuration: with persistence off a restart loses
// every row, and Redis replication is asynchronous, so a failover can lose the last
// acknowledged writes (a position may step back to an earlier one, a lease may return to its
// previous owner). Enable AOF (appendfsync everysec or always) where positions matter.
package redis
