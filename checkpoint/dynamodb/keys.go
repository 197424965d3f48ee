package dynamodb

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// Key attribute names and sort-key prefixes of the table layout (see the package doc).
const (
	attrPK = "pk"
	attrSK = "sk"

	leasePrefix  = "lease#"
	workerPrefix = "worker#"

	// DynamoDB's limits on key attribute sizes, in bytes.
	maxPartitionKey = 2048
	maxSortKey      = 1024
)

// partitionKey encodes (group, stream) unambiguously: the byte length of group in decimal,
// ":", group, "|", stream. The length prefix alone decides where group ends, so group and
// stream may contain any character, "|" and ":" included; the "|" is there for people
// reading the table.
func partitionKey(group, stream string) (string, error) {
	if !utf8.ValidString(group) || !utf8.ValidString(stream) {
		// DynamoDB strings are UTF-8; invalid bytes would be replaced on the wire and two
		// different names could then share a row.
		return "", fmt.Errorf("%w: consumer group and stream name must be valid UTF-8", checkpoint.ErrInvalid)
	}
	pk := strconv.Itoa(len(group)) + ":" + group + "|" + stream
	if len(pk) > maxPartitionKey {
		return "", fmt.Errorf("%w: consumer group and stream name take %d bytes; DynamoDB allows %d in a partition key",
			checkpoint.ErrInvalid, len(pk), maxPartitionKey)
	}
	return pk, nil
}

// sortKey returns prefix + id, checking DynamoDB's limits.
func sortKey(prefix, id, what string) (string, error) {
	if !utf8.ValidString(id) {
		return "", fmt.Errorf("%w: %s must be valid UTF-8", checkpoint.ErrInvalid, what)
	}
	sk := prefix + id
	if len(sk) > maxSortKey {
		return "", fmt.Errorf("%w: %s takes %d bytes; DynamoDB allows %d in a sort key",
			checkpoint.ErrInvalid, what, len(sk), maxSortKey)
	}
	return sk, nil
}

// leaseKey validates key and returns the primary key of its lease row.
func leaseKey(key checkpoint.ShardKey) (map[string]types.AttributeValue, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	pk, err := partitionKey(key.Group, key.Stream)
	if err != nil {
		return nil, err
	}
	sk, err := sortKey(leasePrefix, key.Shard, "shard ID")
	if err != nil {
		return nil, err
	}
	return primaryKey(pk, sk), nil
}

// workerKey validates its arguments and returns the primary key of a worker row.
func workerKey(group, stream, worker string) (map[string]types.AttributeValue, error) {
	if err := checkpoint.ValidateWorker(group, stream, worker); err != nil {
		return nil, err
	}
	pk, err := partitionKey(group, stream)
	if err != nil {
		return nil, err
	}
	sk, err := sortKey(workerPrefix, worker, "worker ID")
	if err != nil {
		return nil, err
	}
	return primaryKey(pk, sk), nil
}

func primaryKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// validateGroupStream checks the arguments of ListLeases and ListWorkers and returns the
// partition key to query.
func validateGroupStream(group, stream string) (string, error) {
	switch {
	case group == "":
		return "", fmt.Errorf("%w: empty consumer group", checkpoint.ErrInvalid)
	case stream == "":
		return "", fmt.Errorf("%w: empty stream name", checkpoint.ErrInvalid)
	}
	return partitionKey(group, stream)
}

// validateInstance checks the instance of a heartbeat: non-empty, and valid UTF-8, because
// DynamoDB would store invalid bytes replaced, and the next heartbeat of the same instance
// would then find a different value and take it for another process.
func validateInstance(w checkpoint.Worker) error {
	if err := checkpoint.ValidateHeartbeat(w); err != nil {
		return err
	}
	if !utf8.ValidString(w.Instance) {
		return fmt.Errorf("%w: worker instance must be valid UTF-8", checkpoint.ErrInvalid)
	}
	return nil
}

// validateOwner checks a worker ID given as an owner or claimant (UTF-8 and non-empty); the
// group and stream were checked with the key.
func validateOwner(key checkpoint.ShardKey, worker string) error {
	if err := checkpoint.ValidateWorker(key.Group, key.Stream, worker); err != nil {
		return err
	}
	if !utf8.ValidString(worker) {
		return fmt.Errorf("%w: worker ID must be valid UTF-8", checkpoint.ErrInvalid)
	}
	return nil
}
