package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

type statusOptions struct {
	groupFlags
	observe  time.Duration
	countMax int32
	noLag    bool
}

func newGroupStatusCmd(a *app) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status STREAM --group G --store URL",
		Short: "Show a group's shards: owner, lease counter, renewals, checkpoint, handoffs, lag; live workers and fair share",
		Long: `status shows, for every shard of the stream and every lease row of the group:
  OWNER       the worker holding the lease ("-": free)
  COUNTER     the lease counter; RENEWED says when status last saw it move
  CHECKPOINT  the group's position (sequence/sub-sequence), SHARD_END, or "-" (none)
  PENDING     a worker waiting for the lease to be handed over
  BEHIND      time behind the tip: MillisBehindLatest of a one-record read at the checkpoint
  RECORDS     user records after the checkpoint, counted with one GetRecords of up to
              --count-max records (">=N" when there are more)
and the group's workers: lease count, fair share and last heartbeat seen.

Liveness is judged as the workers judge it: by watching counters move on this machine's
clock, never by timestamps. status therefore watches the store for up to --observe and
stops early once every held lease and every worker has been seen moving. A worker that
did not move within --observe is shown as stale; it is dead if it stays so for the
group's lease duration. A shard without a checkpoint is measured from TRIM_HORIZON.

` + storeHelp,
		Example: `  shardline --local group status orders --group billing --store redis://127.0.0.1:6379/0
  shardline group status orders --group billing --store dynamodb://shardline-leases --json
  shardline group status orders --group billing --store "redis://10.0.0.5:6379/0?prefix=prod" --observe 15s`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check("status"); err != nil {
				return err
			}
			if o.observe < 0 {
				return usagef("group status: --observe must not be negative")
			}
			if o.countMax < 1 || o.countMax > 10000 {
				return usagef("group status: --count-max must be 1 to 10000, got %d", o.countMax)
			}
			return a.groupStatus(cmd.Context(), args[0], o)
		},
	}
	o.add(cmd)
	cmd.Flags().DurationVar(&o.observe, "observe", 6*time.Second, "watch lease and heartbeat counters for up to this long to judge liveness (0: one read, no judgement)")
	cmd.Flags().Int32Var(&o.countMax, "count-max", 10000, "count at most this many records behind per shard (one GetRecords call)")
	cmd.Flags().BoolVar(&o.noLag, "no-lag", false, "do not read the stream to measure lag")
	return cmd
}

// groupStatus is what status prints.
type groupStatus struct {
	Stream      string         `json:"stream"`
	Group       string         `json:"group"`
	Store       string         `json:"store"`
	ObservedMs  int64          `json:"observed_ms"`
	Shards      []shardStatus  `json:"shards"`
	Workers     []workerStatus `json:"workers"`
	LiveWorkers int            `json:"live_workers"`
	ReadyShards int            `json:"ready_shards"`
	// CaughtUp is true when every shard the group reads has lag 0.
	CaughtUp bool `json:"caught_up"`
}

type shardStatus struct {
	Shard   string   `json:"shard"`
	State   string   `json:"state"` // open, closed, gone (a row whose shard left the listing)
	Ready   bool     `json:"ready"` // the group reads it now: not finished, parents finished
	Parents []string `json:"parents,omitempty"`
	HasRow  bool     `json:"has_lease_row"`
	Owner   string   `json:"owner,omitempty"`
	Counter int64    `json:"lease_counter"`
	// RenewedAgoMs is how long ago status saw the counter move; null when it did not move
	// while status watched.
	RenewedAgoMs *int64              `json:"renewed_ago_ms"`
	Checkpoint   checkpoint.Position `json:"checkpoint"`
	ShardEnd     bool                `json:"shard_end"`
	PendingOwner string              `json:"pending_owner,omitempty"`
	Lag          *lagInfo            `json:"lag,omitempty"`
}

type lagInfo struct {
	MillisBehind int64  `json:"millis_behind_latest"`
	Records      int64  `json:"records_behind"`
	Exact        bool   `json:"records_exact"` // false: at least Records
	Error        string `json:"error,omitempty"`
}

type workerStatus struct {
	Worker         string `json:"worker"`
	Instance       string `json:"instance,omitempty"`
	Counter        int64  `json:"heartbeat_counter"`
	Live           bool   `json:"live"`
	HeartbeatAgoMs *int64 `json:"heartbeat_ago_ms"`
	Leases         int    `json:"leases"`
	FairShare      int    `json:"fair_share"`
}

// watcher remembers when each counter was last seen moving, on this machine's clock.
type watcher struct {
	first map[string]int64
	last  map[string]int64
	moved map[string]time.Time
}

func newWatcher() *watcher {
	return &watcher{first: map[string]int64{}, last: map[string]int64{}, moved: map[string]time.Time{}}
}

func (w *watcher) see(id string, counter int64, now time.Time) {
	if _, ok := w.first[id]; !ok {
		w.first[id] = counter
	} else if w.last[id] != counter {
		w.moved[id] = now
	}
	w.last[id] = counter
}

func (a *app) groupStatus(ctx context.Context, stream string, o statusOptions) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	st, err := a.openStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.close()
	list, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return fmt.Errorf("group status %s: %w", stream, err)
	}

	// Watch the counters; the lag is measured meanwhile from the first read of the rows.
	began := time.Now()
	w := newWatcher()
	var leases []checkpoint.Lease
	var workers []checkpoint.Worker
	read := func() error {
		now := time.Now()
		if leases, err = st.ListLeases(ctx, o.group, stream); err != nil {
			return fmt.Errorf("group status: read leases from %s: %w", st.name, err)
		}
		if workers, err = st.ListWorkers(ctx, o.group, stream); err != nil {
			return fmt.Errorf("group status: read workers from %s: %w", st.name, err)
		}
		for _, l := range leases {
			w.see("lease/"+l.Shard, l.Counter, now)
		}
		for _, wk := range workers {
			w.see("worker/"+wk.ID, wk.Counter, now)
		}
		return nil
	}
	if err := read(); err != nil {
		return err
	}
	lags := map[string]*lagInfo{}
	var lagWG sync.WaitGroup
	if !o.noLag {
		positions := map[string]checkpoint.Position{}
		for _, l := range leases {
			positions[l.Shard] = l.Checkpoint
		}
		var mu sync.Mutex
		sem := make(chan struct{}, 8)
		for _, s := range list {
			id := aws.ToString(s.ShardId)
			pos := positions[id]
			if pos.ShardEnd {
				continue
			}
			lagWG.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				li := measureLag(ctx, client, stream, id, pos, o.countMax)
				mu.Lock()
				lags[id] = &li
				mu.Unlock()
			})
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	for time.Since(began) < o.observe && !allMoved(w, leases, workers) {
		select {
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		case <-tick.C:
		}
		if err := read(); err != nil {
			tick.Stop()
			return err
		}
	}
	tick.Stop()
	lagWG.Wait()
	gs := buildStatus(stream, o.group, st.name, list, leases, workers, w, time.Now(), time.Since(began), o.observe > 0, lags)
	if a.json {
		return writeJSON(a.stdout, gs)
	}
	return printStatus(a, gs)
}

// allMoved reports whether every held lease and every worker row was seen moving: nothing
// more to learn by watching.
func allMoved(w *watcher, leases []checkpoint.Lease, workers []checkpoint.Worker) bool {
	for _, l := range leases {
		if _, ok := w.moved["lease/"+l.Shard]; l.Held() && !ok {
			return false
		}
	}
	for _, wk := range workers {
		if _, ok := w.moved["worker/"+wk.ID]; !ok {
			return false
		}
	}
	return true
}

// measureLag reads the shard at the group's position: MillisBehindLatest of a one-record
// read at the checkpoint, and the user records after it counted with one more read.
func measureLag(ctx context.Context, api readAPI, stream, shard string, pos checkpoint.Position, countMax int32) lagInfo {
	at := iteratorStart{Type: types.ShardIteratorTypeTrimHorizon}
	if !pos.IsZero() {
		at = iteratorStart{Type: types.ShardIteratorTypeAtSequenceNumber, Sequence: pos.SequenceNumber}
	}
	fail := func(err error) lagInfo { return lagInfo{Error: explain(err)} }
	iter, err := getIterator(ctx, api, stream, shard, at)
	if err != nil {
		return fail(err)
	}
	out, err := getRecords(ctx, api, iter, 1)
	if err != nil {
		return fail(err)
	}
	li := lagInfo{MillisBehind: aws.ToInt64(out.MillisBehindLatest), Exact: true}
	for _, r := range out.Records {
		li.Records += userRecordsAfter(r, pos)
	}
	if out.NextShardIterator == nil || (len(out.Records) == 0 && li.MillisBehind == 0) {
		return li
	}
	out, err = getRecords(ctx, api, *out.NextShardIterator, countMax)
	if err != nil {
		return fail(err)
	}
	for _, r := range out.Records {
		li.Records += userRecordsAfter(r, checkpoint.Position{})
	}
	li.Exact = out.NextShardIterator == nil || (int32(len(out.Records)) < countMax && aws.ToInt64(out.MillisBehindLatest) == 0)
	return li
}

// buildStatus assembles the report from what was read; a pure function of its arguments.
func buildStatus(stream, group, store string, list []types.Shard, leases []checkpoint.Lease, workers []checkpoint.Worker,
	w *watcher, now time.Time, observed time.Duration, judged bool, lags map[string]*lagInfo) groupStatus {
	gs := groupStatus{Stream: stream, Group: group, Store: store, ObservedMs: observed.Milliseconds(),
		Shards: []shardStatus{}, Workers: []workerStatus{}}
	rows := map[string]checkpoint.Lease{}
	for _, l := range leases {
		rows[l.Shard] = l
	}
	listed := map[string]types.Shard{}
	for _, s := range list {
		listed[aws.ToString(s.ShardId)] = s
	}
	finished := func(id string) bool { return rows[id].Checkpoint.ShardEnd }
	agoMs := func(id string) *int64 {
		t, ok := w.moved[id]
		if !ok {
			return nil
		}
		ms := now.Sub(t).Milliseconds()
		return &ms
	}
	held := map[string]int{}
	for _, id := range unionKeys(listed, rows) {
		s, inList := listed[id]
		l, hasRow := rows[id]
		ss := shardStatus{Shard: id, HasRow: hasRow, Owner: l.Owner, Counter: l.Counter, Checkpoint: l.Checkpoint,
			ShardEnd: l.Checkpoint.ShardEnd, PendingOwner: l.PendingOwner, Lag: lags[id]}
		switch {
		case !inList:
			ss.State = "gone"
		case shardmap.IsOpen(s):
			ss.State = "open"
		default:
			ss.State = "closed"
		}
		if inList {
			ss.Ready = !finished(id)
			for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p == nil {
					continue
				}
				ss.Parents = append(ss.Parents, *p)
				if _, parentListed := listed[*p]; parentListed && !finished(*p) {
					ss.Ready = false
				}
			}
		}
		if hasRow && l.Held() {
			ss.RenewedAgoMs = agoMs("lease/" + id)
			held[l.Owner]++
		}
		if ss.Ready {
			gs.ReadyShards++
		}
		gs.Shards = append(gs.Shards, ss)
	}
	var live []string
	for _, wk := range workers {
		ws := workerStatus{Worker: wk.ID, Instance: wk.Instance, Counter: wk.Counter, Leases: held[wk.ID],
			HeartbeatAgoMs: agoMs("worker/" + wk.ID)}
		ws.Live = ws.HeartbeatAgoMs != nil || !judged
		if ws.Live {
			live = append(live, wk.ID)
		}
		gs.Workers = append(gs.Workers, ws)
	}
	sort.Slice(gs.Workers, func(i, j int) bool { return gs.Workers[i].Worker < gs.Workers[j].Worker })
	sort.Strings(live)
	gs.LiveWorkers = len(live)
	for i := range gs.Workers {
		if gs.Workers[i].Live {
			gs.Workers[i].FairShare = fairShare(gs.Workers[i].Worker, live, gs.ReadyShards)
		}
	}
	gs.CaughtUp = true
	for _, s := range gs.Shards {
		if s.Ready && (s.Lag == nil || s.Lag.Error != "" || s.Lag.MillisBehind > 0 || s.Lag.Records > 0) {
			gs.CaughtUp = false
		}
	}
	return gs
}

// fairShare is the consumer's balancing target (consumer/plan.go): floor(ready/live), one
// more for the first ready%live live workers in ID order. live must be sorted.
func fairShare(worker string, live []string, ready int) int {
	if len(live) == 0 {
		return 0
	}
	rank, found := slices.BinarySearch(live, worker)
	if !found {
		return 0
	}
	s := ready / len(live)
	if rank < ready%len(live) {
		s++
	}
	return s
}

func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func printStatus(a *app, gs groupStatus) error {
	w := a.stdout
	fmt.Fprintf(w, "Group %s on stream %s (store %s), watched for %s\n\n", gs.Group, gs.Stream, gs.Store, ago(time.Duration(gs.ObservedMs)*time.Millisecond))
	t := newTable(w, "SHARD", "STATE", "OWNER", "COUNTER", "RENEWED", "CHECKPOINT", "PENDING", "BEHIND", "RECORDS")
	for _, s := range gs.Shards {
		state := s.State
		if s.ShardEnd {
			state += ", finished"
		} else if !s.Ready && s.State != "gone" {
			state += ", waiting for parent"
		}
		counter, renewed := "-", "-"
		if s.HasRow {
			counter = strconv.FormatInt(s.Counter, 10)
		}
		if s.Owner != "" {
			renewed = "not seen"
			if s.RenewedAgoMs != nil {
				renewed = ago(time.Duration(*s.RenewedAgoMs)*time.Millisecond) + " ago"
			}
		}
		behind, records := "-", "-"
		if s.Lag != nil {
			if s.Lag.Error != "" {
				behind = "error: " + s.Lag.Error
			} else {
				behind = ago(time.Duration(s.Lag.MillisBehind) * time.Millisecond)
				records = strconv.FormatInt(s.Lag.Records, 10)
				if !s.Lag.Exact {
					records = ">=" + records
				}
			}
		}
		t.row(s.Shard, state, dash(s.Owner), counter, renewed, dash(s.Checkpoint.String()), dash(s.PendingOwner), behind, records)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(gs.Workers) == 0 {
		fmt.Fprintln(w, "No workers registered.")
	} else {
		wt := newTable(w, "WORKER", "LIVE", "LEASES", "FAIR SHARE", "HEARTBEAT")
		for _, wk := range gs.Workers {
			live, hb, share := "yes", "-", "-"
			if !wk.Live {
				live = "stale"
			}
			if wk.HeartbeatAgoMs != nil {
				hb = ago(time.Duration(*wk.HeartbeatAgoMs)*time.Millisecond) + " ago"
			} else if gs.ObservedMs > 0 {
				hb = "not seen"
			}
			if wk.Live {
				share = strconv.Itoa(wk.FairShare)
			}
			wt.row(wk.Worker, live, strconv.Itoa(wk.Leases), share, hb)
		}
		if err := wt.flush(); err != nil {
			return err
		}
	}
	caught := "behind"
	if gs.CaughtUp {
		caught = "caught up"
	}
	fmt.Fprintf(w, "\n%d ready shards, %d live workers; %s.\n", gs.ReadyShards, gs.LiveWorkers, caught)
	return nil
}
