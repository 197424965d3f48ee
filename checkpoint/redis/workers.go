package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/shardline/kinesis/checkpoint"
)

// Heartbeat creates or updates the row of w.ID, increments its counter and stores w.Instance,
// in one script, and returns the row as it was before. A row without an instance field (written
// by an earlier version of this package) reads as instance "".
func (s *Store) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return checkpoint.Worker{}, wrap(opHeartbeat, err)
	}
	tag := s.keys.tag(w.Group, w.Stream)
	reply, err := s.run(ctx, opHeartbeat, heartbeatScript,
		[]string{workerKey(tag, w.ID), workerIndex(tag)}, w.ID, w.Instance)
	if err != nil {
		return checkpoint.Worker{}, err
	}
	prev, ok := parsePrevWorker(w, reply)
	if !ok {
		return checkpoint.Worker{}, fmt.Errorf("checkpoint/redis: %s: malformed script reply %v", opHeartbeat, reply)
	}
	return prev, nil
}

// parsePrevWorker reads heartbeatScript's {previous counter, previous instance} for w.
func parsePrevWorker(w checkpoint.Worker, reply []any) (checkpoint.Worker, bool) {
	if len(reply) != 2 {
		return checkpoint.Worker{}, false
	}
	counter, ok1 := reply[0].(string)
	instance, ok2 := reply[1].(string)
	if !ok1 || !ok2 {
		return checkpoint.Worker{}, false
	}
	n, err := strconv.ParseInt(counter, 10, 64)
	if err != nil {
		return checkpoint.Worker{}, false
	}
	return checkpoint.Worker{Group: w.Group, Stream: w.Stream, ID: w.ID, Instance: instance, Counter: n}, true
}

// ListWorkers returns every worker row of group and stream, sorted by worker ID, live or not.
// An index entry whose row is gone is skipped.
func (s *Store) ListWorkers(ctx context.Context, group, stream string) ([]checkpoint.Worker, error) {
	if err := validateGroupStream(opListWorkers, group, stream); err != nil {
		return nil, err
	}
	tag := s.keys.tag(group, stream)
	rows, err := s.readRows(ctx, opListWorkers, workerIndex(tag), func(id string) string { return workerKey(tag, id) })
	if err != nil {
		return nil, err
	}
	workers := make([]checkpoint.Worker, 0, len(rows))
	for _, r := range rows {
		counter, err := strconv.ParseInt(r.fields[fieldCounter], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("checkpoint/redis: %s: malformed worker row %s/%s/%s: field %s: %v",
				opListWorkers, group, stream, r.member, fieldCounter, err)
		}
		workers = append(workers, checkpoint.Worker{Group: group, Stream: stream, ID: r.member,
			Instance: r.fields[fieldInstance], Counter: counter})
	}
	return workers, nil
}

// RemoveWorker deletes the row of w and its index entry, conditional on the stored counter
// still being w.Counter ([checkpoint.ErrConflict] otherwise, a missing row included).
func (s *Store) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	if err := checkpoint.ValidateWorker(w.Group, w.Stream, w.ID); err != nil {
		return wrap(opRemoveWorker, err)
	}
	tag := s.keys.tag(w.Group, w.Stream)
	_, err := s.run(ctx, opRemoveWorker, deleteScript,
		[]string{workerKey(tag, w.ID), workerIndex(tag)},
		w.ID, strconv.FormatInt(w.Counter, 10))
	return err
}
