package dynamodb

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/kinesis/checkpoint"
)

// Expression attribute names shared by every lease expression.
var leaseNames = map[string]string{
	"#pk":    attrPK,
	"#owner": attrOwner,
	"#token": attrToken,
	"#c":     attrCounter,
	"#pend":  attrPending,
	"#seq":   attrCheckpoint,
	"#sub":   attrSubSequence,
	"#ord":   attrOrder,
	"#wid":   attrWriteID,
}

// names returns the subset of leaseNames that an expression uses: DynamoDB refuses unused
// names.
func names(keys ...string) map[string]string {
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[k] = leaseNames[k]
	}
	return m
}

const (
	// heldBy fences the writes of an owner: owner and tenure token still match.
	heldBy = "#owner = :owner AND #token = :token"
	// notBehind accepts a position not behind the stored one; OrderKey strings sort as
	// positions do, SHARD_END ("999") after all others.
	notBehind = "(attribute_not_exists(#ord) OR #ord <= :ord)"
	// setPosition stores a position and its order key in the same write.
	setPosition = "#seq = :seq, #sub = :sub, #ord = :ord"
)

// GetLease returns the lease row of key, read with strong consistency. A missing row is
// [checkpoint.ErrNotFound]; a failed read is [checkpoint.ErrUnavailable], never ErrNotFound.
func (s *Store) GetLease(ctx context.Context, key checkpoint.ShardKey) (checkpoint.Lease, error) {
	const op = "GetLease"
	pk, err := leaseKey(key)
	if err != nil {
		return checkpoint.Lease{}, opError(op, err)
	}
	item, err := s.getItem(ctx, op, pk)
	if err != nil {
		return checkpoint.Lease{}, err
	}
	if item == nil {
		return checkpoint.Lease{}, opError(op, fmt.Errorf("%w: lease %s/%s/%s", checkpoint.ErrNotFound, key.Group, key.Stream, key.Shard))
	}
	return decodeLease(key, item)
}

func (s *Store) getItem(ctx context.Context, op string, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key,
		ConsistentRead: aws.Bool(true),
	}, s.cfg.apiOptions...)
	if err != nil {
		return nil, classify(s.table, op, err)
	}
	return out.Item, nil
}

// ListLeases returns every lease row of group and stream with one strongly consistent,
// paginated Query on their partition key.
func (s *Store) ListLeases(ctx context.Context, group, stream string) ([]checkpoint.Lease, error) {
	const op = "ListLeases"
	pk, err := validateGroupStream(group, stream)
	if err != nil {
		return nil, opError(op, err)
	}
	var leases []checkpoint.Lease
	err = s.query(ctx, op, pk, leasePrefix, func(item map[string]types.AttributeValue) error {
		l, err := decodeLeaseRow(group, stream, item)
		leases = append(leases, l)
		return err
	})
	if err != nil {
		return nil, err // never a partial listing
	}
	return leases, nil
}

// query calls each for every item of partition pk whose sort key begins with prefix, one
// Query page at a time; the call timeout (WithCallTimeout) bounds each page.
func (s *Store) query(ctx context.Context, op, pk, prefix string, each func(map[string]types.AttributeValue) error) error {
	in := &ddb.QueryInput{
		TableName:                aws.String(s.table),
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     str(pk),
			":prefix": str(prefix),
		},
	}
	if s.cfg.pageLimit > 0 {
		in.Limit = aws.Int32(s.cfg.pageLimit)
	}
	pages := ddb.NewQueryPaginator(s.client, in)
	for pages.HasMorePages() {
		pageCtx, cancel := s.call(ctx)
		page, err := pages.NextPage(pageCtx, s.cfg.apiOptions...)
		cancel()
		if err != nil {
			return classify(s.table, op, err)
		}
		for _, item := range page.Items {
			if err := each(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// TakeLease makes worker the owner of key with a fresh random token, conditional on the
// stored counter being counter (or, for counter 0, on the row not existing yet). It keeps the
// checkpoint, removes the pending owner, and returns the new row. A failed condition is
// [checkpoint.ErrConflict].
//
// When the SDK retried the call after losing the answer to an attempt that DynamoDB had
// applied, the retry finds the counter moved and its condition fails. TakeLease recognises
// that case by the token, which is new for every call, and returns the lease it took rather
// than a false ErrConflict. After an error matching [checkpoint.ErrUnavailable] the take may
// have happened all the same: a row owned by this worker under a token it does not know is
// one it may take again at the row's counter.
func (s *Store) TakeLease(ctx context.Context, key checkpoint.ShardKey, worker string, counter int64) (checkpoint.Lease, error) {
	const op = "TakeLease"
	pk, err := leaseKey(key)
	if err == nil {
		err = validateOwner(key, worker)
	}
	if err != nil {
		return checkpoint.Lease{}, opError(op, err)
	}
	conflict := func() error {
		return opError(op, fmt.Errorf("%w: lease %s of %s/%s changed since counter %d was read",
			checkpoint.ErrConflict, key.Shard, key.Group, key.Stream, counter))
	}
	if counter < 0 {
		return checkpoint.Lease{}, conflict() // no row ever has a negative counter
	}
	cond := "#c = :c"
	nm := names("#owner", "#token", "#c", "#pend")
	if counter == 0 {
		cond = "attribute_not_exists(#pk) OR #c = :c"
		nm["#pk"] = attrPK
	}
	token := rand.Text()
	out, err := s.update(ctx, &ddb.UpdateItemInput{
		Key:                      pk,
		UpdateExpression:         aws.String("SET #owner = :owner, #token = :token, #c = :next REMOVE #pend"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: nm,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": str(worker),
			":token": str(token),
			":c":     num(counter),
			":next":  num(counter + 1),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		item, err := s.refusedRow(ctx, op, pk, ccf)
		switch {
		case err != nil:
			return checkpoint.Lease{}, err
		case item != nil && stringAttr(item, attrToken) == token:
			return decodeLease(key, item) // an earlier attempt of this call took it
		}
		return checkpoint.Lease{}, conflict()
	}
	if err != nil {
		return checkpoint.Lease{}, classify(s.table, op, err)
	}
	return decodeLease(key, out.Attributes)
}

// refusedRow returns the row as it was when DynamoDB refused a conditional write: the item
// that ReturnValuesOnConditionCheckFailure=ALL_OLD put in the exception or, when there is
// none (no row, or a server such as dynalite that ignores the parameter), the row read with a
// consistent GetItem. nil means there is no row.
func (s *Store) refusedRow(ctx context.Context, op string, pk map[string]types.AttributeValue,
	ccf *types.ConditionalCheckFailedException) (map[string]types.AttributeValue, error) {
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	// The write changed nothing, but why is unknown if this read fails: report its failure.
	return s.getItem(ctx, op, pk)
}

// update runs UpdateItem on the store's table.
func (s *Store) update(ctx context.Context, in *ddb.UpdateItemInput) (*ddb.UpdateItemOutput, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	in.TableName = aws.String(s.table)
	return s.client.UpdateItem(ctx, in, s.cfg.apiOptions...)
}

// holds reports whether lease can be the handle of a held lease. A handle without owner or
// token (a free row read with GetLease) or with an owner this package never stores cannot
// match any row: its writes fail with ErrLeaseLost without a call, as the condition would.
func holds(lease checkpoint.Lease) bool {
	return lease.Owner != "" && lease.Token != "" && utf8.ValidString(lease.Owner) && utf8.ValidString(lease.Token)
}

// RenewLease increments the counter of a lease the caller holds and returns the new row
// (with the pending owner and checkpoint). A row that is gone, or whose owner or token
// changed, is [checkpoint.ErrLeaseLost].
func (s *Store) RenewLease(ctx context.Context, lease checkpoint.Lease) (checkpoint.Lease, error) {
	const op = "RenewLease"
	pk, err := leaseKey(lease.ShardKey)
	if err != nil {
		return checkpoint.Lease{}, opError(op, err)
	}
	if !holds(lease) {
		return checkpoint.Lease{}, opError(op, lost(lease))
	}
	out, err := s.update(ctx, &ddb.UpdateItemInput{
		Key:                      pk,
		UpdateExpression:         aws.String("ADD #c :one"),
		ConditionExpression:      aws.String(heldBy),
		ExpressionAttributeNames: names("#owner", "#token", "#c"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": str(lease.Owner),
			":token": str(lease.Token),
			":one":   num(1),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if _, ok := conditionFailed(err); ok {
		return checkpoint.Lease{}, opError(op, lost(lease))
	}
	if err != nil {
		return checkpoint.Lease{}, classify(s.table, op, err)
	}
	return decodeLease(lease.ShardKey, out.Attributes)
}

func lost(lease checkpoint.Lease) error {
	return fmt.Errorf("%w: %s no longer holds lease %s of %s/%s", checkpoint.ErrLeaseLost,
		lease.Owner, lease.Shard, lease.Group, lease.Stream)
}

// Checkpoint stores pos for a lease the caller holds, in one UpdateItem conditional on owner,
// token and the position not being behind the stored one. The lease counter is unchanged.
//
// When the condition fails the store tells why from the row as it was: it asks DynamoDB
// for it with ReturnValuesOnConditionCheckFailure=ALL_OLD and, when the answer carries no
// row (the row is gone, or the server does not support the parameter, as dynalite does
// not), reads it with a consistent GetItem. Owner or token changed, or no row:
// [checkpoint.ErrLeaseLost]; otherwise [checkpoint.ErrPositionBehind].
func (s *Store) Checkpoint(ctx context.Context, lease checkpoint.Lease, pos checkpoint.Position) error {
	const op = "Checkpoint"
	pk, err := leaseKey(lease.ShardKey)
	if err == nil {
		err = pos.Validate()
	}
	if err == nil && pos.IsZero() {
		err = fmt.Errorf("%w: zero position: nothing to checkpoint", checkpoint.ErrInvalid)
	}
	if err != nil {
		return opError(op, err)
	}
	if !holds(lease) {
		return opError(op, lost(lease))
	}
	seq, sub, ord := positionValues(pos)
	_, err = s.update(ctx, &ddb.UpdateItemInput{
		Key:                      pk,
		UpdateExpression:         aws.String("SET " + setPosition),
		ConditionExpression:      aws.String(heldBy + " AND " + notBehind),
		ExpressionAttributeNames: names("#owner", "#token", "#seq", "#sub", "#ord"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": str(lease.Owner),
			":token": str(lease.Token),
			":seq":   seq,
			":sub":   sub,
			":ord":   ord,
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		item, err := s.refusedRow(ctx, op, pk, ccf)
		if err != nil {
			return err
		}
		return whyRefused(op, lease, pos, item)
	}
	if err != nil {
		return classify(s.table, op, err)
	}
	return nil
}

// whyRefused tells ErrLeaseLost from ErrPositionBehind after a fenced write of pos failed its
// condition, from the row as refusedRow returned it.
func whyRefused(op string, lease checkpoint.Lease, pos checkpoint.Position, item map[string]types.AttributeValue) error {
	if item == nil || stringAttr(item, attrOwner) != lease.Owner || stringAttr(item, attrToken) != lease.Token {
		return opError(op, lost(lease))
	}
	stored := stringAttr(item, attrOrder)
	if stored > pos.OrderKey() {
		return opError(op, fmt.Errorf("%w: %s is behind the stored order key %q of lease %s of %s/%s",
			checkpoint.ErrPositionBehind, pos, stored, lease.Shard, lease.Group, lease.Stream))
	}
	// The row satisfies the condition now but did not when DynamoDB checked it. Owner and
	// token never come back once changed (tokens are random per take) and positions never
	// move back, so this cannot happen with this package's writes alone.
	return opError(op, fmt.Errorf("%w: write to lease %s of %s/%s refused but the row as read allows it",
		checkpoint.ErrConflict, lease.Shard, lease.Group, lease.Stream))
}

// ReleaseLease clears the owner, token and pending owner of a lease the caller holds and
// increments the counter, in one UpdateItem fenced like RenewLease. A non-zero final is
// stored in the same write under the rules of Checkpoint, so either both happen or neither.
//
// The write also stores a random ID of this call (attribute lastWriteID), so that when the
// SDK retried the call after losing the answer to an attempt DynamoDB had applied, the
// refused retry is recognised and reported as the success it was, not as ErrLeaseLost. A
// second ReleaseLease call with the same handle fails with ErrLeaseLost, as the contract says.
func (s *Store) ReleaseLease(ctx context.Context, lease checkpoint.Lease, final checkpoint.Position) error {
	const op = "ReleaseLease"
	pk, err := leaseKey(lease.ShardKey)
	if err == nil {
		err = final.Validate()
	}
	if err != nil {
		return opError(op, err)
	}
	if !holds(lease) {
		return opError(op, lost(lease))
	}
	writeID := rand.Text()
	update := "SET #wid = :wid REMOVE #owner, #token, #pend ADD #c :one"
	cond := heldBy
	nm := names("#owner", "#token", "#pend", "#c", "#wid")
	values := map[string]types.AttributeValue{
		":owner": str(lease.Owner),
		":token": str(lease.Token),
		":wid":   str(writeID),
		":one":   num(1),
	}
	if !final.IsZero() {
		update = "SET " + setPosition + ", " + strings.TrimPrefix(update, "SET ")
		cond += " AND " + notBehind
		for _, k := range []string{"#seq", "#sub", "#ord"} {
			nm[k] = leaseNames[k]
		}
		values[":seq"], values[":sub"], values[":ord"] = positionValues(final)
	}
	_, err = s.update(ctx, &ddb.UpdateItemInput{
		Key:                                 pk,
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            nm,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		item, err := s.refusedRow(ctx, op, pk, ccf)
		if err != nil {
			return err
		}
		if item != nil && stringAttr(item, attrWriteID) == writeID {
			return nil // an earlier attempt of this call released it
		}
		if final.IsZero() {
			return opError(op, lost(lease))
		}
		return whyRefused(op, lease, final, item)
	}
	if err != nil {
		return classify(s.table, op, err)
	}
	return nil
}

// RequestHandoff sets claimant as the pending owner of key and increments the counter,
// conditional on the stored owner being owner and the counter being counter; otherwise
// [checkpoint.ErrConflict]. Like ReleaseLease it stores a random ID of the call, so that an
// SDK retry of an attempt that was applied reports success rather than ErrConflict.
func (s *Store) RequestHandoff(ctx context.Context, key checkpoint.ShardKey, owner, claimant string, counter int64) error {
	const op = "RequestHandoff"
	pk, err := leaseKey(key)
	if err == nil {
		err = validateOwner(key, claimant)
	}
	if err != nil {
		return opError(op, err)
	}
	if owner == "" || !utf8.ValidString(owner) {
		// A free lease (or an owner this package never stores) has no owner to hand it over.
		return opError(op, fmt.Errorf("%w: lease %s of %s/%s is not held by %q",
			checkpoint.ErrConflict, key.Shard, key.Group, key.Stream, owner))
	}
	writeID := rand.Text()
	_, err = s.update(ctx, &ddb.UpdateItemInput{
		Key:                      pk,
		UpdateExpression:         aws.String("SET #pend = :claimant, #wid = :wid ADD #c :one"),
		ConditionExpression:      aws.String("#owner = :owner AND #c = :c"),
		ExpressionAttributeNames: names("#pend", "#c", "#owner", "#wid"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":claimant": str(claimant),
			":owner":    str(owner),
			":wid":      str(writeID),
			":c":        num(counter),
			":one":      num(1),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		item, err := s.refusedRow(ctx, op, pk, ccf)
		if err != nil {
			return err
		}
		if item != nil && stringAttr(item, attrWriteID) == writeID {
			return nil // an earlier attempt of this call, retried by the SDK, applied
		}
		return opError(op, fmt.Errorf("%w: lease %s of %s/%s is no longer owned by %s at counter %d",
			checkpoint.ErrConflict, key.Shard, key.Group, key.Stream, owner, counter))
	}
	if err != nil {
		return classify(s.table, op, err)
	}
	return nil
}

// DeleteLease deletes the row of key conditional on its counter being counter; a changed or
// missing row is [checkpoint.ErrConflict].
func (s *Store) DeleteLease(ctx context.Context, key checkpoint.ShardKey, counter int64) error {
	const op = "DeleteLease"
	pk, err := leaseKey(key)
	if err != nil {
		return opError(op, err)
	}
	err = s.deleteIf(ctx, pk, attrCounter, counter)
	if _, ok := conditionFailed(err); ok {
		return opError(op, fmt.Errorf("%w: lease %s of %s/%s changed since counter %d was read",
			checkpoint.ErrConflict, key.Shard, key.Group, key.Stream, counter))
	}
	if err != nil {
		return classify(s.table, op, err)
	}
	return nil
}

// deleteIf deletes the row at key if its number attribute attr equals n.
func (s *Store) deleteIf(ctx context.Context, key map[string]types.AttributeValue, attr string, n int64) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.client.DeleteItem(ctx, &ddb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key,
		ConditionExpression:       aws.String("#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": num(n)},
	}, s.cfg.apiOptions...)
	return err
}
