package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/checkpoint"
	"github.com/shardline/kinesis/internal/shardmap"
)

type seekOptions struct {
	groupFlags
	to     string
	shards []string
	dryRun bool
	force  bool
	yes    bool
}

const seekHelp = `seek moves a consumer group's position on every shard (or on --shard S) so that the
group's workers, when they next take the leases, deliver again (or skip to) from:
  trim_horizon  the oldest record in retention
  latest        the tip: only records put after the seek are delivered
  TIMESTAMP     the first record at or after that time (` + timestampHelp + `)

How a position is expressed: a checkpoint means "every user record up to here is done", so
the group resumes after it. seek finds the first record at or after the target with
GetShardIterator AT_TIMESTAMP, then the record just before it, and stores that record's last
user record as the checkpoint: the group re-delivers exactly from the first record at or
after the target, nothing earlier skipped, nothing later missed. A shard with no record
before the target gets no checkpoint at all (its row is deleted), so workers read it from
their start position: TRIM_HORIZON by default, which is the target; a group run with
LATEST would skip it. A closed shard whose records are all before the target is marked
finished (SHARD_END), so its children are read.

Positions never move backwards in the store, so a seek back deletes the lease row
(conditional on the counter read) and writes a new one: take, checkpoint, release. A seek
forward takes, checkpoints and releases the existing row.

seek prints the plan first; --dry-run stops there. While any lease of the group is held
it refuses: stop the group's workers first (a graceful stop releases the leases). A worker
that crashed leaves its lease held until another worker takes it; --force seeks anyway,
taking each held lease first, which fences its owner: a live owner's next checkpoint fails
and it stops reading the shard. Against a store that is not on this machine seek asks for
--yes.`

func newGroupSeekCmd(a *app) *cobra.Command {
	var o seekOptions
	cmd := &cobra.Command{
		Use:   "seek STREAM --group G --store URL --to trim_horizon|latest|TIMESTAMP",
		Short: "Move a group's positions to trim_horizon, latest or a point in time (shows the plan first)",
		Long:  seekHelp + "\n\n" + storeHelp,
		Example: `  shardline --local group seek orders --group billing --store redis://127.0.0.1:6379/0 --to -1h --dry-run
  shardline group seek orders --group billing --store dynamodb://shardline-leases --to 2024-05-01T12:00:00Z --yes
  shardline group seek orders --group billing --store redis://127.0.0.1:6379/0 --to latest --shard shardId-000000000002`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check("seek"); err != nil {
				return err
			}
			target, err := parseSeekTarget(o.to, time.Now())
			if err != nil {
				return err
			}
			return a.groupSeek(cmd.Context(), args[0], o, target)
		},
	}
	o.add(cmd)
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "where to: trim_horizon, latest or TIMESTAMP (required)")
	f.StringSliceVar(&o.shards, "shard", nil, "move only these shards (repeat or comma-separate)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.force, "force", false, "seek even while leases are held, taking them from their owners")
	f.BoolVar(&o.yes, "yes", false, "confirm changing a store that is not on this machine")
	return cmd
}

// seekTarget is where seek moves the group.
type seekTarget struct {
	kind string    // "trim_horizon", "latest" or "timestamp"
	at   time.Time // for timestamp; for latest, the moment of the seek
}

func (t seekTarget) String() string {
	if t.kind == "timestamp" {
		return t.at.UTC().Format(time.RFC3339Nano)
	}
	return t.kind
}

func parseSeekTarget(s string, now time.Time) (seekTarget, error) {
	switch strings.ToLower(s) {
	case "":
		return seekTarget{}, usagef("group seek: --to is required: trim_horizon, latest or TIMESTAMP")
	case "trim_horizon", "trim-horizon", "oldest", "earliest":
		return seekTarget{kind: "trim_horizon"}, nil
	case "latest", "newest":
		return seekTarget{kind: "latest", at: now}, nil
	}
	t, err := parseTimestamp(s, now)
	if err != nil {
		return seekTarget{}, &usageError{msg: "group seek: --to: " + err.Error()}
	}
	return seekTarget{kind: "timestamp", at: t}, nil
}

// seekStep is the plan for one shard.
type seekStep struct {
	Shard   string              `json:"shard"`
	HasRow  bool                `json:"has_lease_row"`
	Owner   string              `json:"owner,omitempty"`
	Counter int64               `json:"lease_counter"`
	From    checkpoint.Position `json:"from"`
	To      checkpoint.Position `json:"to"`
	// Action: unchanged; set (no row yet: take, checkpoint, release); forward (take,
	// checkpoint, release); rewind (delete, take, checkpoint, release); reset (delete: no
	// checkpoint).
	Action string `json:"action"`
	// First is the first record at or after the target, where the group resumes.
	First *recordRef `json:"first_record,omitempty"`
	Note  string     `json:"note,omitempty"`
	Error string     `json:"error,omitempty"`
}

type recordRef struct {
	Sequence string    `json:"sequence"`
	Arrival  time.Time `json:"arrival"`
}

// seekReport is what seek prints.
type seekReport struct {
	Stream  string     `json:"stream"`
	Group   string     `json:"group"`
	Store   string     `json:"store"`
	To      string     `json:"to"`
	DryRun  bool       `json:"dry_run"`
	Applied bool       `json:"applied"`
	Shards  []seekStep `json:"shards"`
}

func (a *app) groupSeek(ctx context.Context, stream string, o seekOptions, target seekTarget) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	st, err := a.openStore(ctx, o.store)
	if err != nil {
		return err
	}
	defer st.close()
	if !o.dryRun {
		if err := requireYes(o.yes, st.local, "seek group "+o.group, st.name); err != nil {
			return err
		}
	}
	list, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return fmt.Errorf("group seek %s: %w", stream, err)
	}
	for _, want := range o.shards {
		if !slices.ContainsFunc(list, func(s types.Shard) bool { return aws.ToString(s.ShardId) == want }) {
			return fmt.Errorf("group seek %s: no shard %s in the stream", stream, want)
		}
	}
	leases, err := st.ListLeases(ctx, o.group, stream)
	if err != nil {
		return fmt.Errorf("group seek: read leases from %s: %w", st.name, err)
	}
	rows := map[string]checkpoint.Lease{}
	for _, l := range leases {
		rows[l.Shard] = l
	}

	// Find every shard's new position, eight shards at a time.
	var shards []types.Shard
	for _, s := range list {
		if len(o.shards) == 0 || slices.Contains(o.shards, aws.ToString(s.ShardId)) {
			shards = append(shards, s)
		}
	}
	steps := make([]seekStep, len(shards))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range shards {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id := aws.ToString(s.ShardId)
			row, hasRow := rows[id]
			step := seekStep{Shard: id, HasRow: hasRow, Owner: row.Owner, Counter: row.Counter, From: row.Checkpoint}
			pos, first, err := seekPosition(ctx, client, stream, s, target)
			if err != nil {
				step.Error = explain(err)
			}
			step.To, step.First = pos, first
			step.Action, step.Note = planStep(step, target)
			steps[i] = step
		})
	}
	wg.Wait()
	sort.Slice(steps, func(i, j int) bool { return steps[i].Shard < steps[j].Shard })
	rep := seekReport{Stream: stream, Group: o.group, Store: st.name, To: target.String(), DryRun: o.dryRun, Shards: steps}

	var problems []string
	var held []string
	for _, s := range steps {
		if s.Error != "" {
			problems = append(problems, s.Shard+": "+s.Error)
		}
		if s.Owner != "" && s.Action != "unchanged" {
			held = append(held, s.Shard+" (held by "+s.Owner+")")
		}
	}
	switch {
	case len(problems) > 0:
		a.printSeek(rep)
		return fmt.Errorf("group seek: could not find the new position of %s", strings.Join(problems, "; "))
	case o.dryRun:
		return a.printSeek(rep)
	case len(held) > 0 && !o.force:
		a.printSeek(rep)
		return fmt.Errorf("group seek: refusing: %d leases are held: %s; stop the group's workers first, or pass --force if they are gone",
			len(held), strings.Join(held, ", "))
	}
	me := cliWorkerID()
	for i := range rep.Shards {
		s := &rep.Shards[i]
		if s.Action == "unchanged" {
			continue
		}
		key := checkpoint.ShardKey{Group: o.group, Stream: stream, Shard: s.Shard}
		if err := applySeek(ctx, st, key, me, *s, rows[s.Shard]); err != nil {
			s.Error = explain(err)
			problems = append(problems, s.Shard+": "+s.Error)
		}
	}
	rep.Applied = len(problems) == 0
	if err := a.printSeek(rep); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("group seek: %s", strings.Join(problems, "; "))
	}
	return nil
}

// planStep names what seek does to one shard, and what a reader should know about it.
func planStep(s seekStep, target seekTarget) (action, note string) {
	switch {
	case s.Error != "":
		return "error", ""
	case s.To == s.From:
		action = "unchanged"
	case s.To.IsZero():
		action = "reset"
	case !s.HasRow:
		action = "set"
	case s.To.Compare(s.From) >= 0:
		action = "forward"
	default:
		action = "rewind"
	}
	switch {
	case s.To.ShardEnd:
		note = "finished: no record at or after the target"
	case s.To.IsZero() && target.kind != "trim_horizon":
		note = "no record before the target: read from the workers' start position (TRIM_HORIZON by default)"
	case s.First == nil && s.To.IsZero():
		note = "read from the workers' start position (TRIM_HORIZON by default)"
	case s.First == nil:
		note = "no record at or after the target yet"
	}
	return action, note
}

// seekPosition returns the checkpoint that makes a group resume at target on shard s, and
// the first record at or after the target (nil when there is none).
func seekPosition(ctx context.Context, api readAPI, stream string, s types.Shard, target seekTarget) (checkpoint.Position, *recordRef, error) {
	id := aws.ToString(s.ShardId)
	if target.kind == "trim_horizon" {
		return checkpoint.Position{}, nil, nil
	}
	first, err := firstRecord(ctx, api, stream, id, iteratorStart{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: target.at})
	if err != nil {
		return checkpoint.Position{}, nil, err
	}
	if first == nil && !shardmap.IsOpen(s) {
		return checkpoint.Position{ShardEnd: true}, nil, nil
	}
	var ref *recordRef
	stop := ""
	if first != nil {
		stop = aws.ToString(first.SequenceNumber)
		ref = &recordRef{Sequence: stop, Arrival: aws.ToTime(first.ApproximateArrivalTimestamp).UTC()}
	}
	prev, err := recordBefore(ctx, api, stream, id, target.at, stop)
	if err != nil || prev == nil {
		return checkpoint.Position{}, ref, err
	}
	return lastPosition(*prev), ref, nil
}

// firstRecord returns the first record from at, or nil when the shard has none there (it is
// caught up or ended).
func firstRecord(ctx context.Context, api readAPI, stream, shard string, at iteratorStart) (*types.Record, error) {
	iter, err := getIterator(ctx, api, stream, shard, at)
	if err != nil {
		return nil, err
	}
	var pace pacer
	for {
		if err := pace.wait(ctx, minPoll); err != nil {
			return nil, err
		}
		out, err := getRecords(ctx, api, iter, 1)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", shard, err)
		}
		if len(out.Records) > 0 {
			return &out.Records[0], nil
		}
		if out.NextShardIterator == nil || aws.ToInt64(out.MillisBehindLatest) == 0 {
			return nil, nil
		}
		iter = *out.NextShardIterator
	}
}

// recordBefore returns the last record of shard before the record with sequence number stop
// (before the tip when stop is ""), that arrived before at; nil when there is none in
// retention. Kinesis cannot read backwards, so it reads forward from AT_TIMESTAMP at-w for
// growing windows w, from TRIM_HORIZON once the window reaches the oldest record.
func recordBefore(ctx context.Context, api readAPI, stream, shard string, at time.Time, stop string) (*types.Record, error) {
	oldest, err := firstRecord(ctx, api, stream, shard, iteratorStart{Type: types.ShardIteratorTypeTrimHorizon})
	if err != nil || oldest == nil {
		return nil, err
	}
	if stop != "" && aws.ToString(oldest.SequenceNumber) == stop {
		return nil, nil // the first record at or after the target is the oldest one
	}
	oldestAt := aws.ToTime(oldest.ApproximateArrivalTimestamp)
	for w := 5 * time.Second; ; w *= 8 {
		from := iteratorStart{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: at.Add(-w)}
		fromStart := !at.Add(-w).After(oldestAt)
		if fromStart {
			from = iteratorStart{Type: types.ShardIteratorTypeTrimHorizon}
		}
		last, err := scanUntil(ctx, api, stream, shard, from, at, stop)
		if err != nil || last != nil || fromStart {
			return last, err
		}
	}
}

// scanUntil reads shard from start and returns the last record before stop (a sequence
// number; "" for none) that arrived before at.
func scanUntil(ctx context.Context, api readAPI, stream, shard string, start iteratorStart, at time.Time, stop string) (*types.Record, error) {
	iter, err := getIterator(ctx, api, stream, shard, start)
	if err != nil {
		return nil, err
	}
	var last *types.Record
	var pace pacer
	for {
		if err := pace.wait(ctx, minPoll); err != nil {
			return nil, err
		}
		out, err := getRecords(ctx, api, iter, 10000)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", shard, err)
		}
		for i := range out.Records {
			r := &out.Records[i]
			if (stop != "" && compareSequence(aws.ToString(r.SequenceNumber), stop) >= 0) ||
				!aws.ToTime(r.ApproximateArrivalTimestamp).Before(at) {
				return last, nil
			}
			last = r
		}
		if out.NextShardIterator == nil || (len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0) {
			return last, nil
		}
		iter = *out.NextShardIterator
	}
}

// applySeek writes one shard's new position. row is the lease row as the plan read it: every
// write is conditional on it, so a worker that changed the row since makes the seek of that
// shard fail rather than be overwritten.
func applySeek(ctx context.Context, st checkpoint.Store, key checkpoint.ShardKey, me string, s seekStep, row checkpoint.Lease) error {
	counter := row.Counter
	var mine *checkpoint.Lease
	if s.HasRow && row.Held() {
		// --force: take the lease first, which fences its owner.
		l, err := st.TakeLease(ctx, key, me, counter)
		if err != nil {
			return fmt.Errorf("take the lease from %s: %w", row.Owner, err)
		}
		mine, counter = &l, l.Counter
	}
	if s.Action == "forward" {
		if mine == nil {
			l, err := st.TakeLease(ctx, key, me, counter)
			if err != nil {
				return fmt.Errorf("take the lease: %w", err)
			}
			mine = &l
		}
		if err := st.Checkpoint(ctx, *mine, s.To); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		return st.ReleaseLease(ctx, *mine, checkpoint.Position{})
	}
	if s.HasRow {
		if err := st.DeleteLease(ctx, key, counter); err != nil {
			return fmt.Errorf("delete the lease row: %w", err)
		}
	}
	if s.To.IsZero() {
		return nil
	}
	l, err := st.TakeLease(ctx, key, me, 0)
	if errors.Is(err, checkpoint.ErrConflict) {
		return fmt.Errorf("a worker took the lease during the seek, so the shard is read from its start position; stop the workers and seek again: %w", err)
	}
	if err != nil {
		return fmt.Errorf("recreate the lease row: %w", err)
	}
	if err := st.Checkpoint(ctx, l, s.To); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return st.ReleaseLease(ctx, l, checkpoint.Position{})
}

// cliWorkerID is the owner the command line writes while it holds a lease for a moment.
func cliWorkerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("shardline-cli@%s/%d", host, os.Getpid())
}

func (a *app) printSeek(rep seekReport) error {
	if a.json {
		return writeJSON(a.stdout, rep)
	}
	w := a.stdout
	verb := "Seeking"
	switch {
	case rep.DryRun:
		verb = "Plan (dry run, nothing written): seek"
	case rep.Applied:
		verb = "Moved"
	}
	fmt.Fprintf(w, "%s group %s on stream %s to %s (store %s)\n\n", verb, rep.Group, rep.Stream, rep.To, rep.Store)
	t := newTable(w, "SHARD", "OWNER", "FROM", "TO", "ACTION", "RESUMES AT")
	for _, s := range rep.Shards {
		var resumes []string
		if s.First != nil {
			resumes = append(resumes, s.First.Sequence+" ("+timeText(s.First.Arrival)+")")
		}
		if s.Note != "" {
			resumes = append(resumes, s.Note)
		}
		action := s.Action
		if s.Error != "" {
			action += ": " + s.Error
		}
		t.row(s.Shard, dash(s.Owner), dash(s.From.String()), dash(s.To.String()), action, dash(strings.Join(resumes, "; ")))
	}
	return t.flush()
}

func newGroupDeleteCmd(a *app) *cobra.Command {
	var g groupFlags
	var force, yes bool
	cmd := &cobra.Command{
		Use:   "delete STREAM --group G --store URL",
		Short: "Delete a group's lease rows and worker rows for a stream (its positions are lost)",
		Long: `delete removes every lease row (with its position) and every worker row of the group on the
stream. Each delete is conditional on the counter read, so a row a worker changed meanwhile
is left alone and reported. While leases are held it refuses unless --force; against a
store that is not on this machine it asks for --yes.

` + storeHelp,
		Example: `  shardline --local group delete orders --group billing --store redis://127.0.0.1:6379/0
  shardline group delete orders --group billing --store dynamodb://shardline-leases --yes`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.check("delete"); err != nil {
				return err
			}
			return a.groupDelete(cmd.Context(), args[0], g, force, yes)
		},
	}
	g.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "delete even while leases are held")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm deleting from a store that is not on this machine")
	return cmd
}

func (a *app) groupDelete(ctx context.Context, stream string, g groupFlags, force, yes bool) error {
	st, err := a.openStore(ctx, g.store)
	if err != nil {
		return err
	}
	defer st.close()
	if err := requireYes(yes, st.local, "delete group "+g.group, st.name); err != nil {
		return err
	}
	leases, err := st.ListLeases(ctx, g.group, stream)
	if err != nil {
		return fmt.Errorf("group delete: read leases from %s: %w", st.name, err)
	}
	workers, err := st.ListWorkers(ctx, g.group, stream)
	if err != nil {
		return fmt.Errorf("group delete: read workers from %s: %w", st.name, err)
	}
	var held []string
	for _, l := range leases {
		if l.Held() {
			held = append(held, l.Shard+" (held by "+l.Owner+")")
		}
	}
	sort.Strings(held)
	if len(held) > 0 && !force {
		return fmt.Errorf("group delete: refusing: %d leases are held: %s; stop the group's workers first, or pass --force if they are gone",
			len(held), strings.Join(held, ", "))
	}
	var problems []string
	deleted := 0
	for _, l := range leases {
		if err := st.DeleteLease(ctx, l.ShardKey, l.Counter); err != nil {
			problems = append(problems, l.Shard+": "+explain(err))
			continue
		}
		deleted++
	}
	removed := 0
	for _, w := range workers {
		if err := st.RemoveWorker(ctx, w); err != nil {
			problems = append(problems, "worker "+w.ID+": "+explain(err)+" (it is still running)")
			continue
		}
		removed++
	}
	err = a.report(struct {
		Stream        string   `json:"stream"`
		Group         string   `json:"group"`
		LeasesDeleted int      `json:"leases_deleted"`
		WorkersRemove int      `json:"workers_removed"`
		Problems      []string `json:"problems,omitempty"`
	}{stream, g.group, deleted, removed, problems},
		fmt.Sprintf("deleted group %s on stream %s: %d lease rows, %d worker rows", g.group, stream, deleted, removed))
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("group delete: %s", strings.Join(problems, "; "))
	}
	return nil
}
