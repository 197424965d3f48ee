// Package dynamodb is a [checkpoint.Store] on one Amazon DynamoDB table: the positions,
// leases and worker registry of any number of consumer groups and streams, kept with
// single-item conditional writes.
//
//	import (
//		awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
//		ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
//	)
//
//	client := awsddb.NewFromConfig(cfg)
//	if err := ddbstore.CreateTable(ctx, client, "shardline-leases"); err != nil {
//		return err // an existing table with the right key schema is fine
//	}
//	store, err := ddbstore.New(client, "shardline-leases")
//	if err != nil {
//		return err
//	}
//	lease, err := store.TakeLease(ctx, checkpoint.ShardKey{Group: "billing", Stream: "orders",
//		Shard: "shardId-000000000000"}, "worker-1", 0)
//
// # Table layout
//
// One table holds every group and stream. Its key is a partition key "pk" and a sort key
// "sk", both strings:
//
//	pk  <byte length of group>:<group>|<stream>     e.g. "7:billing|orders"
//	sk  lease#<shard ID>                            one lease row per shard
//	    worker#<worker ID>                          one registry row per worker
//
// The length prefix makes the encoding unambiguous whatever characters the names hold
// ("a|b","c" and "a","b|c" get different keys); the "|" is only there for people reading the
// table. Names (and worker instances) must be valid UTF-8, and the keys must fit DynamoDB's
// limits (2048 bytes for pk, 1024 for sk); other names fail with [checkpoint.ErrInvalid]
// before any call.
//
// A lease row has these attributes besides the key:
//
//	leaseOwner                   S  worker holding the lease; absent when free
//	leaseToken                   S  tenure token, 128 random bits from crypto/rand per take; absent when free
//	leaseCounter                 N  +1 on every take, renewal, release and handoff request
//	pendingOwner                 S  worker that asked for a graceful handoff; absent otherwise
//	checkpoint                   S  sequence number, or "SHARD_END" (as the KCL writes it); absent before the first checkpoint
//	checkpointSubSequenceNumber  N  sub-sequence number of the checkpoint (0 for SHARD_END)
//	checkpointOrder              S  Position.OrderKey() of the checkpoint, compared in conditions
//	lastWriteID                  S  random ID of the last ReleaseLease or RequestHandoff call (see Guarantees)
//
// A worker row has these:
//
//	heartbeatCounter             N  +1 on every heartbeat
//	workerInstance               S  the instance (checkpoint.Worker.Instance) of the last heartbeat;
//	                                absent in rows written by versions before it existed, which
//	                                read as instance ""
//
// Heartbeat is one UpdateItem with ReturnValues ALL_OLD: the previous counter and instance it
// returns come from the same write. No row has a TTL attribute, and [CreateTable] enables no
// TTL: a position is deleted only by [Store.DeleteLease].
//
// Why one table with (group, stream) in the partition key: the KCL creates one lease table
// per application, so every new consumer group needs CreateTable permission at run time, waits
// for a table to become ACTIVE, and leaves tables behind that someone has to find, pay for
// (provisioned ones) and clean up; the per-account table quota and the IAM policies grow with
// the number of groups. Here the table is created once, by a deployment or by [CreateTable],
// and IAM can still be narrowed to one group with dynamodb:LeadingKeys. Keeping all rows of a
// (group, stream) under one partition key is also what lets ListLeases and ListWorkers be one
// strongly consistent Query; a global secondary index would offer only eventually consistent
// reads.
//
// The price of that layout is that one stream's lease and worker rows share a partition key,
// and DynamoDB serves about 1,000 write units per second per partition key (each write here is
// one unit: rows are far below 1 KB) until adaptive capacity (split for heat) spreads the key's
// rows over more partitions. A stream whose shards checkpoint after every GetRecords batch (up
// to 5 per shard per second) stays within it up to about 150 shards; beyond that, checkpoint on
// an interval.
//
// # Guarantees
//
//   - Every write is one conditional UpdateItem or DeleteItem on one item: no transactions, no
//     read-modify-write. Owner writes (RenewLease, Checkpoint, ReleaseLease) are conditional on
//     leaseOwner and leaseToken, so a worker that lost a lease changes nothing; claimant writes
//     (TakeLease, RequestHandoff, DeleteLease, RemoveWorker) are conditional on the counter the
//     caller read.
//   - Positions never move backwards: the checkpoint condition is
//     attribute_not_exists(checkpointOrder) OR checkpointOrder <= :new, and order keys compare
//     as positions do, SHARD_END after all. The position and its order key are written together.
//   - Every read is strongly consistent (GetItem and Query with ConsistentRead).
//   - Errors: a missing row is [checkpoint.ErrNotFound] and nothing else is. No connection, a
//     timeout, a cancelled context, throttling (ProvisionedThroughputExceeded, RequestLimitExceeded,
//     ThrottlingException) and 5xx answers are [checkpoint.ErrUnavailable]; a missing table is
//     [ErrTableNotFound]; client errors that retrying cannot fix (AccessDenied, ValidationException)
//     are returned wrapped and match no sentinel. errors.As reaches the SDK's error in every case.
//   - After a refused Checkpoint or ReleaseLease the store tells [checkpoint.ErrLeaseLost] from
//     [checkpoint.ErrPositionBehind] with the row as it was: DynamoDB returns it in the
//     exception (ReturnValuesOnConditionCheckFailure=ALL_OLD); where the exception carries none
//     (no row, or an emulator such as dynalite that ignores the parameter) the store reads it
//     with a consistent GetItem.
//   - Lost answers: when the SDK retries a call whose first attempt DynamoDB applied but whose
//     answer was lost, the retry's condition fails against the row the first attempt wrote.
//     TakeLease recognises its own token there, and ReleaseLease and RequestHandoff their own
//     lastWriteID, and report success instead of a false ErrLeaseLost or ErrConflict. A renewal
//     or heartbeat retried that way adds 2 to the counter (the heartbeat then returns its own
//     instance as the previous one), a repeated checkpoint of the same position succeeds, and a
//     retried DeleteLease or RemoveWorker reports ErrConflict for a row that is gone. A call that fails with ErrUnavailable may or may not have been applied.
//
// A Store is safe for concurrent use, starts no goroutines and holds no state besides its
// configuration: each method is one DynamoDB call (one per page for the listings), plus one
// consistent GetItem after some refused conditional writes.
//
// # IAM
//
// A consumer needs dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:DeleteItem and
// dynamodb:Query on the table; [CreateTable] needs dynamodb:CreateTable and
// dynamodb:DescribeTable. PutItem, Scan, BatchWriteItem and the transaction and TTL actions are
// never used.
//
//	{
//	  "Effect": "Allow",
//	  "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"],
//	  "Resource": "arn:aws:dynamodb:REGION:ACCOUNT:table/shardline-leases"
//	}
package dynamodb
