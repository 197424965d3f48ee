package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

type tailOptions struct {
	from   string
	at     string
	after  string
	group  string
	store  string
	n      int
	follow bool
	shards []string
	limit  int32
}

func newTailCmd(a *app) *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Print a stream's records: from the start, the tip, a time, a sequence number or a group's checkpoints",
		Long: `tail reads a stream's shards and prints every user record (KPL aggregates are unpacked,
as Shardline's consumer and the KCL do) until it is caught up, or for ever with -f.

Where to start, one of:
  --from trim_horizon   the oldest record in retention (the default)
  --from latest         records put from now on (useful with -f)
  --at TIMESTAMP        the first record at or after a point in time
  --after SEQUENCE      the records after a sequence number (with --shard)
  --group G --store URL where consumer group G has checkpointed each shard: read-only,
                        tail takes no lease and writes nothing; shards without a
                        checkpoint start at --from, finished shards are skipped

Without -f the shards are read one after another, parents before children, so the output
is the same each run; with -f they are read at once (children after their parents) and
records of different shards interleave. -n stops after N records.

Output: each record's data on a line of its own, or with --json one JSON object per line:
shard, sequence, sub_sequence, key, explicit_hash_key, arrival, aggregated and data (text
when the data is valid UTF-8) or data_base64.

TIMESTAMP is ` + timestampHelp + `.`,
		Example: `  shardline --local tail orders
  shardline tail orders --at 2024-05-01T12:00:00Z -n 100 --json
  shardline tail orders --at -15m --shard shardId-000000000001
  shardline tail orders --from latest -f
  shardline tail orders --group billing --store redis://127.0.0.1:6379/0 --json`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err := o.validate(cmd)
			if err != nil {
				return err
			}
			return a.tail(cmd.Context(), args[0], o, start)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "trim_horizon", "start: trim_horizon or latest")
	f.StringVar(&o.at, "at", "", "start at the first record at or after TIMESTAMP")
	f.StringVar(&o.after, "after", "", "start after sequence number SEQUENCE (needs --shard)")
	f.StringVar(&o.group, "group", "", "start where consumer group G has checkpointed (with --store)")
	f.StringVar(&o.store, "store", "", "checkpoint store of --group: redis://HOST:PORT/DB[?prefix=P], rediss://..., dynamodb://TABLE")
	f.IntVarP(&o.n, "lines", "n", 0, "stop after N records (0: no limit)")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep reading new records until interrupted")
	f.StringSliceVar(&o.shards, "shard", nil, "read only these shards (repeat or comma-separate)")
	f.Int32Var(&o.limit, "limit", 10000, "GetRecords limit per call, 1 to 10000")
	return cmd
}

// validate checks the combination of flags and returns the start for shards without a
// group checkpoint.
func (o *tailOptions) validate(cmd *cobra.Command) (iteratorStart, error) {
	fromSet := cmd.Flags().Changed("from")
	n := 0
	for _, set := range []bool{fromSet && o.group == "", o.at != "", o.after != "", o.group != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return iteratorStart{}, usagef("tail: give one of --from, --at, --after and --group")
	case o.n < 0:
		return iteratorStart{}, usagef("tail: -n must not be negative")
	case o.limit < 1 || o.limit > 10000:
		return iteratorStart{}, usagef("tail: --limit must be 1 to 10000, got %d", o.limit)
	case o.group != "" && o.store == "":
		return iteratorStart{}, usagef("tail: --group needs --store URL")
	case o.store != "" && o.group == "":
		return iteratorStart{}, usagef("tail: --store goes with --group")
	case o.after != "" && len(o.shards) != 1:
		return iteratorStart{}, usagef("tail: --after SEQUENCE needs --shard: sequence numbers are per shard")
	}
	switch {
	case o.at != "":
		t, err := parseTimestamp(o.at, time.Now())
		if err != nil {
			return iteratorStart{}, &usageError{msg: "tail: --at: " + err.Error()}
		}
		return iteratorStart{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: t}, nil
	case o.after != "":
		if err := (checkpoint.Position{SequenceNumber: o.after}).Validate(); err != nil {
			return iteratorStart{}, usagef("tail: --after %q is not a sequence number", o.after)
		}
		return iteratorStart{Type: types.ShardIteratorTypeAfterSequenceNumber, Sequence: o.after}, nil
	}
	switch strings.ToLower(o.from) {
	case "trim_horizon", "trim-horizon", "oldest":
		return iteratorStart{Type: types.ShardIteratorTypeTrimHorizon}, nil
	case "latest", "newest":
		return iteratorStart{Type: types.ShardIteratorTypeLatest}, nil
	}
	return iteratorStart{}, usagef("tail: --from must be trim_horizon or latest, got %q (use --at TIMESTAMP or --after SEQUENCE for the others)", o.from)
}

// tailShard is one shard to read and where.
type tailShard struct {
	id      string
	parents []string
	rng     *types.HashKeyRange
	start   iteratorStart
	skip    checkpoint.Position // user records at or before it are not printed
}

func (a *app) tail(ctx context.Context, stream string, o tailOptions, start iteratorStart) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	list, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return fmt.Errorf("tail %s: %w", stream, err)
	}
	var leases map[string]checkpoint.Lease
	if o.group != "" {
		st, err := a.openStore(ctx, o.store)
		if err != nil {
			return err
		}
		defer st.close()
		rows, err := st.ListLeases(ctx, o.group, stream)
		if err != nil {
			return fmt.Errorf("tail %s: read group %s from %s: %w", stream, o.group, st.name, err)
		}
		leases = make(map[string]checkpoint.Lease, len(rows))
		for _, l := range rows {
			leases[l.Shard] = l
		}
	}
	var plan []tailShard
	known := map[string]bool{}
	for _, s := range list {
		known[aws.ToString(s.ShardId)] = true
	}
	for _, want := range o.shards {
		if !known[want] {
			return fmt.Errorf("tail %s: no shard %s in the stream", stream, want)
		}
	}
	for _, s := range list {
		id := aws.ToString(s.ShardId)
		if len(o.shards) > 0 && !slices.Contains(o.shards, id) {
			continue
		}
		ts := tailShard{id: id, rng: s.HashKeyRange, start: start}
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil && known[*p] {
				ts.parents = append(ts.parents, *p)
			}
		}
		if start.Type == types.ShardIteratorTypeLatest && !shardmap.IsOpen(s) {
			continue // nothing comes after the tip of a closed shard
		}
		if l, ok := leases[id]; ok && !l.Checkpoint.IsZero() {
			if l.Checkpoint.ShardEnd {
				continue
			}
			// AT, not AFTER: user records of the aggregate after the checkpoint's
			// sub-sequence number are still the group's to read.
			ts.start = iteratorStart{Type: types.ShardIteratorTypeAtSequenceNumber, Sequence: l.Checkpoint.SequenceNumber}
			ts.skip = l.Checkpoint
		}
		plan = append(plan, ts)
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].id < plan[j].id })

	t := &tailer{
		api: client, stream: stream, limit: o.limit, max: o.n, follow: o.follow,
		json: a.json, out: bufio.NewWriterSize(a.stdout, 64<<10),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.stop = cancel
	if o.follow {
		err = t.followAll(ctx, plan)
	} else {
		for _, s := range plan {
			if err = t.readShard(ctx, s); err != nil || t.full() {
				break
			}
		}
	}
	if ferr := t.flush(); err == nil {
		err = ferr
	}
	if t.dropped > 0 || t.malformed > 0 {
		fmt.Fprintf(a.stderr, "tail: %d user records skipped (hash key outside their shard's range, as the KCL does); %d malformed aggregates printed whole\n", t.dropped, t.malformed)
	}
	if errors.Is(err, context.Canceled) && (t.full() || ctx.Err() != nil) {
		return nil // -n reached, or interrupted: what was read is printed
	}
	if err != nil {
		return fmt.Errorf("tail %s: %w", stream, err)
	}
	return nil
}

// tailer reads shards and prints their records.
type tailer struct {
	api    readAPI
	stream string
	limit  int32
	max    int
	follow bool
	json   bool
	stop   context.CancelFunc

	mu                 sync.Mutex
	out                *bufio.Writer
	printed            int
	dropped, malformed int
	writeErr           error
}

func (t *tailer) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.max > 0 && t.printed >= t.max
}

func (t *tailer) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.out.Flush(); t.writeErr == nil {
		t.writeErr = err
	}
	return t.writeErr
}

// envelope is a record under --json.
type envelope struct {
	Shard           string    `json:"shard"`
	Sequence        string    `json:"sequence"`
	SubSequence     int64     `json:"sub_sequence"`
	Key             string    `json:"key"`
	ExplicitHashKey string    `json:"explicit_hash_key,omitempty"`
	Arrival         time.Time `json:"arrival"`
	Aggregated      bool      `json:"aggregated"`
	Data            *string   `json:"data,omitempty"`
	DataBase64      *string   `json:"data_base64,omitempty"`
}

func newEnvelope(r userRecord) envelope {
	e := envelope{Shard: r.Shard, Sequence: r.Sequence, SubSequence: r.SubSequence, Key: r.Key,
		ExplicitHashKey: r.ExplicitHashKey, Arrival: r.Arrival, Aggregated: r.Aggregated}
	if utf8.Valid(r.Data) {
		s := string(r.Data)
		e.Data = &s
	} else {
		s := base64.StdEncoding.EncodeToString(r.Data)
		e.DataBase64 = &s
	}
	return e
}

// print writes records; it stops the read once -n records were printed.
func (t *tailer) print(recs []userRecord, dropped, malformed int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropped += dropped
	t.malformed += malformed
	for _, r := range recs {
		if t.max > 0 && t.printed >= t.max {
			break
		}
		if t.json {
			b, err := json.Marshal(newEnvelope(r))
			if err != nil {
				return err
			}
			t.out.Write(b)
		} else {
			t.out.Write(r.Data)
		}
		t.out.WriteByte('\n')
		t.printed++
	}
	if t.follow {
		t.writeErr = t.out.Flush()
	}
	if t.writeErr != nil {
		return t.writeErr
	}
	if t.max > 0 && t.printed >= t.max {
		t.stop()
		return context.Canceled
	}
	return nil
}

// readShard reads one shard until it is caught up (or, following, until it ends or ctx
// ends) and returns the shard's children when it ended.
func (t *tailer) readShard(ctx context.Context, s tailShard) error {
	_, err := t.read(ctx, s)
	return err
}

func (t *tailer) read(ctx context.Context, s tailShard) ([]types.ChildShard, error) {
	iter, err := getIterator(ctx, t.api, t.stream, s.id, s.start)
	if err != nil {
		return nil, err
	}
	d := newDeaggregator(s.id, s.rng)
	skip := s.skip
	var pace pacer
	idle := minPoll
	var lastSeq string
	var recs []userRecord
	for {
		if err := pace.wait(ctx, idle); err != nil {
			return nil, err
		}
		out, err := getRecords(ctx, t.api, iter, t.limit)
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			// Iterators live five minutes: start again after the last record read.
			at := s.start
			if lastSeq != "" {
				at = iteratorStart{Type: types.ShardIteratorTypeAfterSequenceNumber, Sequence: lastSeq}
			}
			if iter, err = getIterator(ctx, t.api, t.stream, s.id, at); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.id, err)
		}
		recs = recs[:0]
		d.dropped, d.malformed = 0, 0
		for _, r := range out.Records {
			recs = d.add(recs, r, skip)
		}
		if n := len(out.Records); n > 0 {
			lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
			skip = checkpoint.Position{}
		}
		if err := t.print(recs, d.dropped, d.malformed); err != nil {
			return nil, err
		}
		if out.NextShardIterator == nil {
			return out.ChildShards, nil // the shard ended
		}
		iter = *out.NextShardIterator
		caughtUp := len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0
		switch {
		case caughtUp && !t.follow:
			return nil, nil
		case caughtUp:
			idle = min(idle*2, time.Second)
		default:
			idle = minPoll
		}
	}
}

// followAll reads every planned shard at once, each child after its parents, and the
// children of shards that end while it runs, until ctx ends.
func (t *tailer) followAll(ctx context.Context, plan []tailShard) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		done = map[string]chan struct{}{}
		wg   sync.WaitGroup
	)
	var start func(s tailShard)
	start = func(s tailShard) {
		mu.Lock()
		if _, ok := done[s.id]; ok {
			mu.Unlock()
			return
		}
		ch := make(chan struct{})
		done[s.id] = ch
		var waits []chan struct{}
		for _, p := range s.parents {
			if pc, ok := done[p]; ok {
				waits = append(waits, pc)
			}
		}
		mu.Unlock()
		wg.Go(func() {
			defer close(ch)
			for _, w := range waits {
				select {
				case <-w:
				case <-ctx.Done():
					return
				}
			}
			children, err := t.read(ctx, s)
			if err != nil {
				cancel(err)
				return
			}
			for _, c := range children {
				start(tailShard{id: aws.ToString(c.ShardId), parents: c.ParentShards, rng: c.HashKeyRange,
					start: iteratorStart{Type: types.ShardIteratorTypeTrimHorizon}})
			}
		})
	}
	for _, s := range plan {
		start(s)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
