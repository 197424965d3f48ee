// Package producer is a batching, aggregating Kinesis producer: it accepts records one at a
// time, packs them into KPL aggregates per shard and PutRecords requests, and reports for every
// record exactly one outcome.
//
//	client := kinesis.NewFromConfig(cfg)
//	p, err := producer.New(client, "orders")
//	if err != nil {
//		return err
//	}
//	defer p.Close(context.Background()) // flushes; bound it with a deadline in real code
//
//	res, err := p.Put(ctx, order.CustomerID, payload) // returns at once
//	if err != nil {
//		return err // invalid record, closed producer, or ErrBufferFull: ctx ended while the buffer was full
//	}
//	o, err := res.Wait(ctx) // or select on res.Done(), or use PutSync
//	if errors.Is(err, producer.ErrWaitAbandoned) {
//		return err // ctx ended first: the record goes on, its outcome unknown to us
//	}
//	if err != nil {
//		return err // why the record failed; o.Attempts says how hard we tried
//	}
//	log.Printf("stored on %s at %s/%d", o.ShardID, o.SequenceNumber, o.SubSequence)
//
// # Delivery
//
// Every record Put accepts ends in exactly one outcome, observable through its [Result] and,
// for failures, the OnFailure hook (see [WithOnFailure]): delivered with its shard and sequence
// number, or failed with an error that says why — a Kinesis error code ([EntryError]), a
// request error retrying cannot fix, a spent retry budget ([RetryBudgetError]), or [ErrClosed]
// when Close gave up. Nothing is dropped silently, at Close included. Put does not copy the
// record data: leave it unmodified until the outcome.
//
// Delivery is at least once: a PutRecords request that timed out or lost its connection may
// have been stored, and is retried. A failed record tells which side it is on: its outcome
// error matches [ErrMaybeWritten] (errors.Is) when any attempt that carried it ended without a
// known result — a timeout, a connection broken after sending, a 5xx answer, a request in
// flight when Close gave up — so Kinesis may hold it all the same; it does not when every
// attempt was surely refused (entry error codes, 4xx answers) or never made.
//
// Put blocks only while the buffer is full (see [WithBufferLimits]), for as long as its
// context allows, and then returns an error matching both [ErrBufferFull] and the context's
// error, so overload is told apart from a deadline that ended for another reason; TryPut does
// not block. A [Result.Wait] whose context ends first returns an error matching
// [ErrWaitAbandoned] (and the context's error), which no outcome error matches: test it first
// (Wait's documentation gives the whole order). Flush sends everything now and waits for it; Close
// stops intake, flushes, fails what it could not deliver when its context ends, and stops
// every goroutine. Both return a [*FailedError] with the count and the first error when
// records they waited for failed: Flush counts the records accepted before it that fail
// after it was called, Close every record that fails after it was first called, those it
// gave up on included (that error also matches ErrClosed and the context's error).
//
// # Shards, aggregation and batching
//
// The producer lists the stream's shards (ListShards, all pages) and predicts each record's
// shard from the MD5 of its partition key, or from its explicit hash key. Records predicted
// for the same shard share KPL aggregates (on by default, see [WithAggregation]); an
// aggregate travels under its first record's partition key with that record's hash key given
// explicitly, so Kinesis stores it on the predicted shard, and every user record keeps its own
// key in the aggregate's table: consumers see each record under its key, on the shard its key
// maps to. A record that does not fit an aggregate alone, and an aggregate of one record, are
// sent plain. Kinesis records are batched into PutRecords requests of at most 500 entries and
// 5 MiB, sent when full, when they can take no more of the records waiting (with ordering, the
// next records of their keys wait for them), or when their oldest record has waited the
// linger time, at most MaxInFlight at a time, within per-shard token buckets (1,000 records
// and 1 MiB per second by default; an aggregate counts as one record). A shard whose records
// wait for tokens sends what they allow once per linger time rather than a few at a time.
//
// After a reshard, the map is stale until the next listing: an aggregate built for a shard
// that has split lands on one child, and KCL-compatible consumers (Shardline's included) drop
// the user records whose hash keys fall outside that child's range. The producer notices that
// the response names a shard other than the predicted one, lists the shards again, reports
// the records that are readable where they landed as delivered, and sends the others again
// through the new map (Stats.Resent counts them, as do the retry metrics). They are not lost;
// the dropped copies stay in the stream, invisible to such consumers. The map is also listed
// periodically (see [WithShardMapRefresh]).
//
// # Retries and ordering
//
// Entries refused with ProvisionedThroughputExceededException or InternalFailure, and
// requests that failed retryably (throttling, 5xx, network, timeouts; see [IsRetryable]), are
// retried with capped exponential backoff and jitter, while the record's retry budget lasts
// (see [WithRetryBudget]): a number of attempts, and an age counted from the record's first
// attempt, so that time spent queued behind the rate limits is not spent from it. Other entry
// errors and fatal request errors (missing stream, denied access, KMS problems) fail their
// records at once.
//
// Ordering is on by default (see [WithOrdering]): records of one partition key (or one
// explicit hash key) are stored in Put order, retried ones included, because no two of them
// are ever in flight at once and a retried entry goes back ahead of newer ones of its keys.
// Records of different keys share requests and are in flight together, many per shard, so a
// shard whose records spread over many keys takes its full throughput with or without
// aggregation; a single key gets one record (or one aggregate) per round trip. Order holds
// across a reshard too: while records of a shard that left the map are in flight or being
// checked, nothing is sent, and then they go to the new shards ahead of newer records.
//
// # Goroutines and hooks
//
// New starts the producer's goroutines: one dispatcher (aggregation, batching, retries), one
// shard-map refresher, MaxInFlight senders, and, with an OnFailure hook, one goroutine that
// calls it. Close stops them all; a Producer that is never closed keeps them running. The
// OnFailure hook is called on its own goroutine, serially, in the order records failed; it may
// block (its record holds its buffer room until it returns), and must not call Flush, Close or
// a blocking Put. Results may be waited for from any goroutine.
//
// # Observability
//
// Every producer_* metric of package metrics is emitted through the collector given to
// [WithMetrics], labelled with the stream name (and the AWS error code or error class where
// the catalog says so); [Producer.Stats] gives the same counts as a snapshot. Logs go to the
// [log/slog] logger given to [WithLogger]; they never contain record data, partition keys or
// credentials.
package producer
