package dynamodb

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// fakeAPI answers UpdateItem with update and GetItem with get, counting the calls. These
// tests cover what dynalite cannot produce: a ConditionalCheckFailedException that carries
// the old item (ReturnValuesOnConditionCheckFailure=ALL_OLD, as DynamoDB sends it), and
// failures between a refused write and its follow-up read.
type fakeAPI struct {
	update  func(*ddb.UpdateItemInput) (*ddb.UpdateItemOutput, error)
	get     func(*ddb.GetItemInput) (*ddb.GetItemOutput, error)
	query   func(*ddb.QueryInput) (*ddb.QueryOutput, error)
	updates int
	gets    int
}

func (f *fakeAPI) GetItem(_ context.Context, in *ddb.GetItemInput, _ ...func(*ddb.Options)) (*ddb.GetItemOutput, error) {
	f.gets++
	if f.get == nil {
		return nil, errors.New("unexpected GetItem")
	}
	return f.get(in)
}

func (f *fakeAPI) UpdateItem(_ context.Context, in *ddb.UpdateItemInput, _ ...func(*ddb.Options)) (*ddb.UpdateItemOutput, error) {
	f.updates++
	if f.update == nil {
		return nil, errors.New("unexpected UpdateItem")
	}
	return f.update(in)
}

func (f *fakeAPI) DeleteItem(context.Context, *ddb.DeleteItemInput, ...func(*ddb.Options)) (*ddb.DeleteItemOutput, error) {
	return nil, errors.New("unexpected DeleteItem")
}

func (f *fakeAPI) Query(_ context.Context, in *ddb.QueryInput, _ ...func(*ddb.Options)) (*ddb.QueryOutput, error) {
	if f.query == nil {
		return nil, errors.New("unexpected Query")
	}
	return f.query(in)
}

var testKey = checkpoint.ShardKey{Group: "g", Stream: "s", Shard: "shard-1"}

func held(owner, token string) checkpoint.Lease {
	return checkpoint.Lease{ShardKey: testKey, Owner: owner, Token: token, Counter: 1}
}

// row builds a lease row as DynamoDB would return it.
func row(owner, token string, pos checkpoint.Position, writeID string) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{attrCounter: num(1), attrSK: str(leasePrefix + testKey.Shard)}
	if owner != "" {
		item[attrOwner], item[attrToken] = str(owner), str(token)
	}
	if !pos.IsZero() {
		item[attrCheckpoint], item[attrSubSequence], item[attrOrder] = positionValues(pos)
	}
	if writeID != "" {
		item[attrWriteID] = str(writeID)
	}
	return item
}

func refusedWith(item map[string]types.AttributeValue) error {
	return &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: item}
}

func newFakeStore(t *testing.T, f *fakeAPI) *Store {
	t.Helper()
	s, err := New(f, "table")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckpointRefusalReason guards against telling ErrLeaseLost and ErrPositionBehind
// apart wrongly (a behind position reported as a lost lease cancels a healthy shard; a lost
// lease reported as behind keeps a fenced-out worker running), against ignoring the item
// DynamoDB returns with ALL_OLD (a needless second round trip), and against turning a failed
// follow-up read into a verdict: the cause is then unknown and the answer is ErrUnavailable.
func TestCheckpointRefusalReason(t *testing.T) {
	p := checkpoint.Position{SequenceNumber: "200"}
	readErr := errors.New("connection reset")
	for _, tc := range []struct {
		name      string
		old       map[string]types.AttributeValue // in the exception (ALL_OLD); nil: not sent
		read      map[string]types.AttributeValue // follow-up GetItem answer
		readErr   error
		want      error
		wantReads int
	}{
		{"ALL_OLD: stored ahead", row("w1", "t1", checkpoint.Position{SequenceNumber: "300"}, ""), nil, nil, checkpoint.ErrPositionBehind, 0},
		{"ALL_OLD: shard ended", row("w1", "t1", checkpoint.Position{ShardEnd: true}, ""), nil, nil, checkpoint.ErrPositionBehind, 0},
		{"ALL_OLD: other token", row("w1", "t2", checkpoint.Position{SequenceNumber: "100"}, ""), nil, nil, checkpoint.ErrLeaseLost, 0},
		{"ALL_OLD: other owner, ahead", row("w2", "t2", checkpoint.Position{SequenceNumber: "300"}, ""), nil, nil, checkpoint.ErrLeaseLost, 0},
		{"ALL_OLD: released", row("", "", checkpoint.Position{SequenceNumber: "100"}, ""), nil, nil, checkpoint.ErrLeaseLost, 0},
		{"read: stored ahead", nil, row("w1", "t1", checkpoint.Position{SequenceNumber: "1000"}, ""), nil, checkpoint.ErrPositionBehind, 1},
		{"read: other token", nil, row("w1", "t9", checkpoint.Position{SequenceNumber: "1"}, ""), nil, checkpoint.ErrLeaseLost, 1},
		{"read: no row", nil, nil, nil, checkpoint.ErrLeaseLost, 1},
		{"read fails", nil, nil, readErr, checkpoint.ErrUnavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{
				update: func(in *ddb.UpdateItemInput) (*ddb.UpdateItemOutput, error) {
					if in.ReturnValuesOnConditionCheckFailure != types.ReturnValuesOnConditionCheckFailureAllOld {
						t.Errorf("Checkpoint does not ask for ALL_OLD on condition failure")
					}
					return nil, refusedWith(tc.old)
				},
				get: func(in *ddb.GetItemInput) (*ddb.GetItemOutput, error) {
					if !aws.ToBool(in.ConsistentRead) {
						t.Errorf("follow-up GetItem is not a consistent read")
					}
					return &ddb.GetItemOutput{Item: tc.read}, tc.readErr
				},
			}
			s := newFakeStore(t, f)
			err := s.Checkpoint(t.Context(), held("w1", "t1"), p)
			if !errors.Is(err, tc.want) {
				t.Errorf("Checkpoint = %v, want %v", err, tc.want)
			}
			if tc.readErr != nil && (errors.Is(err, checkpoint.ErrLeaseLost) || !errors.Is(err, tc.readErr)) {
				t.Errorf("Checkpoint = %v, want the read's error wrapped, and no verdict", err)
			}
			if f.gets != tc.wantReads {
				t.Errorf("%d follow-up reads, want %d", f.gets, tc.wantReads)
			}
		})
	}
}

// TestRetriedWriteRecognised guards against false failures after the SDK retried a write
// whose first attempt DynamoDB applied but whose answer was lost: the retry's condition then
// fails against the row the first attempt wrote. A take reported as ErrConflict would leave
// the lease held by a worker that does not know its token for a whole lease duration (and,
// after a steal, the shard unprocessed); a release or handoff request reported as failed
// would claim "the write changed nothing" when it did.
func TestRetriedWriteRecognised(t *testing.T) {
	// applied answers UpdateItem as if an earlier attempt of the same call had been applied:
	// it refuses with the row that attempt wrote (tokens and write IDs taken from the input).
	applied := func(mine bool, withItem bool, write func(in *ddb.UpdateItemInput) map[string]types.AttributeValue) *fakeAPI {
		var last map[string]types.AttributeValue
		f := &fakeAPI{}
		f.update = func(in *ddb.UpdateItemInput) (*ddb.UpdateItemOutput, error) {
			last = write(in)
			if !mine {
				last = row("w9", "other", checkpoint.Position{}, "other-call")
			}
			if withItem {
				return nil, refusedWith(last)
			}
			return nil, refusedWith(nil)
		}
		f.get = func(*ddb.GetItemInput) (*ddb.GetItemOutput, error) { return &ddb.GetItemOutput{Item: last}, nil }
		return f
	}
	take := func(in *ddb.UpdateItemInput) map[string]types.AttributeValue {
		tok := in.ExpressionAttributeValues[":token"].(*types.AttributeValueMemberS).Value
		return row("w1", tok, checkpoint.Position{}, "")
	}
	writeID := func(in *ddb.UpdateItemInput) map[string]types.AttributeValue {
		id := in.ExpressionAttributeValues[":wid"].(*types.AttributeValueMemberS).Value
		return row("", "", checkpoint.Position{}, id)
	}
	for _, withItem := range []bool{true, false} {
		for _, mine := range []bool{true, false} {
			name := map[bool]string{true: "own write", false: "other write"}[mine] +
				map[bool]string{true: ", ALL_OLD", false: ", read"}[withItem]
			t.Run(name, func(t *testing.T) {
				s := newFakeStore(t, applied(mine, withItem, take))
				l, err := s.TakeLease(t.Context(), testKey, "w1", 4)
				if mine && (err != nil || l.Owner != "w1" || l.Token == "") {
					t.Errorf("TakeLease after its own applied attempt = %+v, %v; want the lease", l, err)
				}
				if !mine && !errors.Is(err, checkpoint.ErrConflict) {
					t.Errorf("TakeLease refused for another take = %v, want ErrConflict", err)
				}

				s = newFakeStore(t, applied(mine, withItem, writeID))
				err = s.ReleaseLease(t.Context(), held("w1", "t1"), checkpoint.Position{})
				if mine && err != nil {
					t.Errorf("ReleaseLease after its own applied attempt = %v, want nil", err)
				}
				if !mine && !errors.Is(err, checkpoint.ErrLeaseLost) {
					t.Errorf("ReleaseLease refused after another write = %v, want ErrLeaseLost", err)
				}

				s = newFakeStore(t, applied(mine, withItem, writeID))
				err = s.RequestHandoff(t.Context(), testKey, "w1", "w2", 3)
				if mine && err != nil {
					t.Errorf("RequestHandoff after its own applied attempt = %v, want nil", err)
				}
				if !mine && !errors.Is(err, checkpoint.ErrConflict) {
					t.Errorf("RequestHandoff refused after another write = %v, want ErrConflict", err)
				}
			})
		}
	}
}

// TestInvalidArgumentsMakeNoCall guards against sending malformed requests to DynamoDB
// (they come back as ValidationException, which is not ErrInvalid) and against a handle
// that cannot be held (a free row read with GetLease) costing a round trip.
func TestInvalidArgumentsMakeNoCall(t *testing.T) {
	f := &fakeAPI{}
	s := newFakeStore(t, f)
	ctx := t.Context()
	bad := checkpoint.ShardKey{Group: "g", Stream: "", Shard: "1"}
	free := checkpoint.Lease{ShardKey: testKey, Counter: 3}
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"GetLease empty stream", func() error { _, err := s.GetLease(ctx, bad); return err }(), checkpoint.ErrInvalid},
		{"TakeLease empty worker", func() error { _, err := s.TakeLease(ctx, testKey, "", 0); return err }(), checkpoint.ErrInvalid},
		{"TakeLease negative counter", func() error { _, err := s.TakeLease(ctx, testKey, "w", -1); return err }(), checkpoint.ErrConflict},
		{"Checkpoint zero position", s.Checkpoint(ctx, held("w", "t"), checkpoint.Position{}), checkpoint.ErrInvalid},
		{"Checkpoint bad sequence", s.Checkpoint(ctx, held("w", "t"), checkpoint.Position{SequenceNumber: "01"}), checkpoint.ErrInvalid},
		{"Checkpoint free handle", s.Checkpoint(ctx, free, checkpoint.Position{SequenceNumber: "1"}), checkpoint.ErrLeaseLost},
		{"RenewLease free handle", func() error { _, err := s.RenewLease(ctx, free); return err }(), checkpoint.ErrLeaseLost},
		{"ReleaseLease bad final", s.ReleaseLease(ctx, held("w", "t"), checkpoint.Position{SubSequenceNumber: -1, SequenceNumber: "5"}), checkpoint.ErrInvalid},
		{"RequestHandoff empty claimant", s.RequestHandoff(ctx, testKey, "w", "", 1), checkpoint.ErrInvalid},
		{"RequestHandoff free lease", s.RequestHandoff(ctx, testKey, "", "w2", 1), checkpoint.ErrConflict},
		{"Heartbeat worker not UTF-8", func() error {
			_, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w\xff", Instance: "i"})
			return err
		}(), checkpoint.ErrInvalid},
		{"Heartbeat instance not UTF-8", func() error {
			_, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w", Instance: "i\xff"})
			return err
		}(), checkpoint.ErrInvalid},
		{"Heartbeat empty instance", func() error {
			_, err := s.Heartbeat(ctx, checkpoint.Worker{Group: "g", Stream: "s", ID: "w"})
			return err
		}(), checkpoint.ErrInvalid},
		{"ListLeases empty group", func() error { _, err := s.ListLeases(ctx, "", "s"); return err }(), checkpoint.ErrInvalid},
		{"RemoveWorker empty ID", s.RemoveWorker(ctx, checkpoint.Worker{Group: "g", Stream: "s"}), checkpoint.ErrInvalid},
	}
	for _, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.err, c.want)
		}
	}
	if f.updates+f.gets != 0 {
		t.Errorf("%d calls reached DynamoDB, want none", f.updates+f.gets)
	}
}

// TestReadsAreConsistent guards against eventually consistent reads, which dynalite cannot
// reveal (it is always consistent) but DynamoDB serves from any replica: a worker could read a
// counter from before its own renewal and judge a live lease expired, or list leases without
// the one it just took and take another.
func TestReadsAreConsistent(t *testing.T) {
	var reads []string
	f := &fakeAPI{
		get: func(in *ddb.GetItemInput) (*ddb.GetItemOutput, error) {
			if !aws.ToBool(in.ConsistentRead) {
				reads = append(reads, "GetItem")
			}
			return &ddb.GetItemOutput{}, nil
		},
		query: func(in *ddb.QueryInput) (*ddb.QueryOutput, error) {
			if !aws.ToBool(in.ConsistentRead) {
				reads = append(reads, "Query "+aws.ToString(in.KeyConditionExpression))
			}
			return &ddb.QueryOutput{}, nil
		},
	}
	s := newFakeStore(t, f)
	_, _ = s.GetLease(t.Context(), testKey)
	_, _ = s.ListLeases(t.Context(), "g", "s")
	_, _ = s.ListWorkers(t.Context(), "g", "s")
	if len(reads) != 0 {
		t.Errorf("eventually consistent reads: %v", reads)
	}
	if f.gets != 1 {
		t.Errorf("GetLease made %d GetItem calls, want 1", f.gets)
	}
}

// TestListingNeverPartial guards against a listing that fails on a later page but hands back
// the rows of the earlier ones: a worker balancing on them would count too few leases or
// workers and take or steal more than its share.
func TestListingNeverPartial(t *testing.T) {
	pages := 0
	f := &fakeAPI{query: func(in *ddb.QueryInput) (*ddb.QueryOutput, error) {
		pages++
		if in.ExclusiveStartKey != nil {
			return nil, errors.New("connection reset by peer")
		}
		return &ddb.QueryOutput{
			Items: []map[string]types.AttributeValue{
				row("w1", "t1", checkpoint.Position{}, ""),
			},
			LastEvaluatedKey: map[string]types.AttributeValue{attrPK: str("x"), attrSK: str("y")},
		}, nil
	}}
	s := newFakeStore(t, f)
	leases, err := s.ListLeases(t.Context(), "g", "s")
	if !errors.Is(err, checkpoint.ErrUnavailable) || leases != nil {
		t.Errorf("ListLeases failing on page 2 = %d rows, %v; want no rows and ErrUnavailable", len(leases), err)
	}
	if pages != 2 {
		t.Errorf("ListLeases read %d pages, want 2", pages)
	}
}
