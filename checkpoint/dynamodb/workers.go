package dynamodb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// Heartbeat creates the row of w.ID or increments its counter and sets its instance, in one
// unconditional UpdateItem (ADD starts a missing counter at 0) that returns the row as it was
// before (ReturnValues ALL_OLD, nothing for a new row). A row without a workerInstance
// attribute (written by an earlier version of this package) reads as instance "".
func (s *Store) Heartbeat(ctx context.Context, w checkpoint.Worker) (checkpoint.Worker, error) {
	const op = "Heartbeat"
	pk, err := workerKey(w.Group, w.Stream, w.ID)
	if err == nil {
		err = validateInstance(w)
	}
	if err != nil {
		return checkpoint.Worker{}, opError(op, err)
	}
	out, err := s.update(ctx, &ddb.UpdateItemInput{
		Key:                       pk,
		UpdateExpression:          aws.String("ADD #c :one SET #i = :i"),
		ExpressionAttributeNames:  map[string]string{"#c": attrHeartbeat, "#i": attrInstance},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":i": str(w.Instance)},
		ReturnValues:              types.ReturnValueAllOld,
	})
	if err != nil {
		return checkpoint.Worker{}, classify(s.table, op, err)
	}
	if len(out.Attributes) == 0 {
		return checkpoint.Worker{Group: w.Group, Stream: w.Stream, ID: w.ID}, nil
	}
	prev, err := decodeWorker(w.Group, w.Stream, out.Attributes)
	if err != nil {
		return checkpoint.Worker{}, opError(op, err)
	}
	return prev, nil
}

// ListWorkers returns every worker row of group and stream with one strongly consistent,
// paginated Query.
func (s *Store) ListWorkers(ctx context.Context, group, stream string) ([]checkpoint.Worker, error) {
	const op = "ListWorkers"
	pk, err := validateGroupStream(group, stream)
	if err != nil {
		return nil, opError(op, err)
	}
	var workers []checkpoint.Worker
	err = s.query(ctx, op, pk, workerPrefix, func(item map[string]types.AttributeValue) error {
		w, err := decodeWorker(group, stream, item)
		workers = append(workers, w)
		return err
	})
	if err != nil {
		return nil, err // never a partial listing
	}
	return workers, nil
}

// RemoveWorker deletes the row of w conditional on its counter still being w.Counter; a
// changed or missing row is [checkpoint.ErrConflict].
func (s *Store) RemoveWorker(ctx context.Context, w checkpoint.Worker) error {
	const op = "RemoveWorker"
	pk, err := workerKey(w.Group, w.Stream, w.ID)
	if err != nil {
		return opError(op, err)
	}
	err = s.deleteIf(ctx, pk, attrHeartbeat, w.Counter)
	if _, ok := conditionFailed(err); ok {
		return opError(op, fmt.Errorf("%w: worker %s of %s/%s changed since counter %d was read",
			checkpoint.ErrConflict, w.ID, w.Group, w.Stream, w.Counter))
	}
	if err != nil {
		return classify(s.table, op, err)
	}
	return nil
}
