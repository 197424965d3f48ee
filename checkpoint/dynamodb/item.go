package dynamodb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// Non-key attributes of lease and worker rows (see the package doc). Expressions always
// refer to them through ExpressionAttributeNames, so DynamoDB's reserved words never matter.
const (
	attrOwner        = "leaseOwner"
	attrToken        = "leaseToken"
	attrCounter      = "leaseCounter"
	attrPending      = "pendingOwner"
	attrCheckpoint   = "checkpoint"
	attrSubSequence  = "checkpointSubSequenceNumber"
	attrOrder        = "checkpointOrder"
	attrWriteID      = "lastWriteID"
	attrHeartbeat    = "heartbeatCounter"
	attrInstance     = "workerInstance"
	shardEndSequence = "SHARD_END" // stored in attrCheckpoint for Position{ShardEnd: true}, as the KCL does
)

// decodeLease turns a lease row into a Lease for key.
func decodeLease(key checkpoint.ShardKey, item map[string]types.AttributeValue) (checkpoint.Lease, error) {
	l := checkpoint.Lease{ShardKey: key}
	var err error
	if l.Counter, err = numberAttr(item, attrCounter); err != nil {
		return checkpoint.Lease{}, err
	}
	l.Owner = stringAttr(item, attrOwner)
	l.Token = stringAttr(item, attrToken)
	l.PendingOwner = stringAttr(item, attrPending)
	switch seq := stringAttr(item, attrCheckpoint); seq {
	case "":
	case shardEndSequence:
		l.Checkpoint = checkpoint.Position{ShardEnd: true}
	default:
		sub, err := numberAttr(item, attrSubSequence)
		if err != nil {
			return checkpoint.Lease{}, err
		}
		l.Checkpoint = checkpoint.Position{SequenceNumber: seq, SubSequenceNumber: sub}
	}
	return l, nil
}

// decodeLeaseRow decodes a row returned by Query, taking the shard ID from its sort key.
func decodeLeaseRow(group, stream string, item map[string]types.AttributeValue) (checkpoint.Lease, error) {
	sk := stringAttr(item, attrSK)
	shard, ok := strings.CutPrefix(sk, leasePrefix)
	if !ok || shard == "" {
		return checkpoint.Lease{}, fmt.Errorf("checkpoint/dynamodb: row %q is not a lease row", sk)
	}
	return decodeLease(checkpoint.ShardKey{Group: group, Stream: stream, Shard: shard}, item)
}

// decodeWorker decodes a worker row, taking the worker ID from its sort key. A row without a
// workerInstance attribute has instance "".
func decodeWorker(group, stream string, item map[string]types.AttributeValue) (checkpoint.Worker, error) {
	sk := stringAttr(item, attrSK)
	id, ok := strings.CutPrefix(sk, workerPrefix)
	if !ok || id == "" {
		return checkpoint.Worker{}, fmt.Errorf("checkpoint/dynamodb: row %q is not a worker row", sk)
	}
	n, err := numberAttr(item, attrHeartbeat)
	if err != nil {
		return checkpoint.Worker{}, err
	}
	return checkpoint.Worker{Group: group, Stream: stream, ID: id, Instance: stringAttr(item, attrInstance), Counter: n}, nil
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func numberAttr(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("checkpoint/dynamodb: row %q has no number attribute %s", stringAttr(item, attrSK), name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint/dynamodb: row %q: attribute %s: %w", stringAttr(item, attrSK), name, err)
	}
	return n, nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// positionValues returns the expression values that store pos (valid and not zero).
func positionValues(pos checkpoint.Position) (seq, sub, ord types.AttributeValue) {
	if pos.ShardEnd {
		return str(shardEndSequence), num(0), str(pos.OrderKey())
	}
	return str(pos.SequenceNumber), num(pos.SubSequenceNumber), str(pos.OrderKey())
}
