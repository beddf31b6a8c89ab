package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// OwnerIndex is KCL 3.x's global secondary index of the lease table:
// hash leaseOwner, range leaseKey, KEYS_ONLY (renewals do not write to
// it). Workers Query it for their own leases instead of scanning.
const OwnerIndex = "LeaseOwnerToLeaseKeyIndex"

// Items of the lease table that are not leases: the leader lock, as KCL
// 3.5 writes it in a single table (the DynamoDB lock client's attributes
// with entityType LEADER), and Shardline's worker items.
const (
	LeaderKey       = "Leader"
	entityLeader    = "LEADER"
	entityWorker    = "SHARDLINE_WORKER"
	workerKeyPrefix = "shardline-worker:"

	attrLockOwner    = "ownerName"
	attrLockDuration = "leaseDuration"
	attrLockVersion  = "recordVersionNumber"
	attrWorkerID     = "shardlineWorkerId"
	attrHeartbeat    = "shardlineHeartbeat"
	attrMaxLeases    = "shardlineMaxLeases"
)

// ErrNoIndex means the table's LeaseOwnerToLeaseKeyIndex cannot be read
// (missing, or still being built): the caller scans instead.
var ErrNoIndex = errors.New("lease table index " + OwnerIndex + " is not ready")

// ErrNotLeader means a write of the leader lock found it held by another
// worker, or gone.
var ErrNotLeader = errors.New("not the leader")

// WorkerItem is a Shardline worker's item in the lease table, which the
// leader reads to know the workers that have no lease yet, and their
// -max-leases. Heartbeat moves every time the worker writes it.
type WorkerItem struct {
	ID        string
	MaxLeases int64 // 0: no limit
	Heartbeat int64
	Nonce     string
}

// LeaderLock is the leader item as last read.
type LeaderLock struct {
	Owner    string
	Version  string // recordVersionNumber: changes with every heartbeat
	Duration time.Duration
}

func workerKey(id string) string { return workerKeyPrefix + id }

// decodeOther reads a non-lease item into s (the leader lock and
// Shardline's worker items; KCL's other entities are skipped).
func decodeOther(item map[string]types.AttributeValue, s *Scanned) {
	et, _ := getS(item, attrEntityType, false)
	switch et {
	case entityLeader:
		s.Leader = decodeLock(item)
	case entityWorker:
		if w, ok := decodeWorker(item); ok {
			s.Workers = append(s.Workers, w)
		}
	}
}

func decodeWorker(item map[string]types.AttributeValue) (WorkerItem, bool) {
	id, err := getS(item, attrWorkerID, true)
	if err != nil || id == "" {
		return WorkerItem{}, false
	}
	w := WorkerItem{ID: id}
	w.MaxLeases, _ = getN(item, attrMaxLeases)
	w.Heartbeat, _ = getN(item, attrHeartbeat)
	w.Nonce, _ = getS(item, attrNonce, false)
	return w, true
}

func decodeLock(item map[string]types.AttributeValue) *LeaderLock {
	l := &LeaderLock{}
	l.Owner, _ = getS(item, attrLockOwner, false)
	l.Version, _ = getS(item, attrLockVersion, false)
	d, _ := getS(item, attrLockDuration, false)
	if ms, err := strconv.ParseInt(d, 10, 64); err == nil && ms > 0 {
		l.Duration = time.Duration(ms) * time.Millisecond
	}
	return l
}

// ensureIndex adds LeaseOwnerToLeaseKeyIndex to a table that lacks it (a
// table written by KCL 2.x or an earlier Shardline), as KCL 3.x does at
// start. It does not wait: until the index is ACTIVE, OwnedKeys answers
// ErrNoIndex and workers scan. A refusal (no dynamodb:UpdateTable) is an
// error wrapping ErrNoIndex: the table can be used, with Scans.
func (t *Table) ensureIndex(ctx context.Context, td *types.TableDescription) error {
	if td == nil {
		return nil
	}
	for _, g := range td.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == OwnerIndex {
			return nil
		}
	}
	create := &types.CreateGlobalSecondaryIndexAction{
		IndexName:  aws.String(OwnerIndex),
		KeySchema:  ownerIndexKeys(),
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
	if td.BillingModeSummary == nil || td.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		if pt := td.ProvisionedThroughput; pt != nil && aws.ToInt64(pt.ReadCapacityUnits) > 0 {
			create.ProvisionedThroughput = &types.ProvisionedThroughput{
				ReadCapacityUnits: pt.ReadCapacityUnits, WriteCapacityUnits: pt.WriteCapacityUnits,
			}
		}
	}
	_, err := t.db.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:                   &t.name,
		AttributeDefinitions:        keyAttributes(),
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: create}},
	})
	var inUse *types.ResourceInUseException
	var limit *types.LimitExceededException
	if err != nil && !errors.As(err, &inUse) && !errors.As(err, &limit) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("%w: adding it to lease table %s: %w", ErrNoIndex, t.name, err)
	}
	return nil
}

func keyAttributes() []types.AttributeDefinition {
	return []types.AttributeDefinition{
		{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
	}
}

func ownerIndexKeys() []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(attrOwner), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeRange},
	}
}

// OwnedKeys lists the keys of the leases whose leaseOwner is owner, from
// LeaseOwnerToLeaseKeyIndex (eventually consistent: a lease taken or
// given a moment ago may be missing or still listed). ErrNoIndex: the
// index cannot be read yet.
func (t *Table) OwnedKeys(ctx context.Context, owner string) ([]string, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &t.name,
		IndexName:                 aws.String(OwnerIndex),
		KeyConditionExpression:    aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)},
	}
	var keys []string
	for {
		out, err := t.db.Query(ctx, in)
		if err != nil {
			var ve interface{ ErrorCode() string }
			if errors.As(err, &ve) && ve.ErrorCode() == "ValidationException" {
				return nil, fmt.Errorf("%w: %v", ErrNoIndex, err)
			}
			return nil, fmt.Errorf("query leases of %s in %s: %w", owner, t.name, err)
		}
		for _, item := range out.Items {
			if k, _ := getS(item, attrKey, false); k != "" {
				keys = append(keys, k)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return keys, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Assign makes owner the owner of l, as last read, for the leader: an
// unowned or expired lease, or a handoff that timed out. It moves the
// counter, ends a handoff and removes the nonce, so that owner, finding
// the lease under its name without its nonce, knows it was given it.
func (t *Table) Assign(ctx context.Context, l Lease, owner string) (Lease, error) {
	u := update{set: map[string]types.AttributeValue{attrOwner: str(owner)}, remove: []string{attrCheckpointOwner, attrNonce}}
	if l.Holder() != owner {
		u.set[attrOwnerSwitches] = num(l.OwnerSwitchesSinceCheckpoint + 1)
	}
	out, err := t.write(ctx, l, u, true)
	if err != nil {
		return Lease{}, fmt.Errorf("assign lease %s to %s: %w", l.Key, owner, err)
	}
	return out, nil
}

// RequestHandoff starts KCL 3.x's graceful handoff of l, as last read,
// from its owner to to: leaseOwner = to, checkpointOwner = the owner, the
// counter unchanged. The owner finishes the batch in flight, checkpoints
// and passes the lease on (Release); to waits meanwhile.
func (t *Table) RequestHandoff(ctx context.Context, l Lease, to string) (Lease, error) {
	if l.Owner == "" || l.MidHandoff() {
		return Lease{}, fmt.Errorf("hand off lease %s: it has no owner, or is mid-handoff: %w", l.Key, ErrLeaseLost)
	}
	out, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &t.name,
		Key:                 keyOf(l.Key),
		UpdateExpression:    aws.String("SET #o = :to, #co = :from"),
		ConditionExpression: aws.String("#c = :c AND #o = :from AND attribute_not_exists(#co)"),
		ExpressionAttributeNames: map[string]string{
			"#o": attrOwner, "#co": attrCheckpointOwner, "#c": attrCounter,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":to": str(to), ":from": str(l.Owner), ":c": num(l.Counter),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return Lease{}, fmt.Errorf("hand off lease %s: %w", l.Key, ErrLeaseLost)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("hand off lease %s: %w", l.Key, err)
	}
	return decode(out.Attributes)
}

// RegisterWorker writes (or refreshes) the worker item of id, moving its
// heartbeat.
func (t *Table) RegisterWorker(ctx context.Context, w WorkerItem) error {
	names := map[string]string{"#et": attrEntityType, "#id": attrWorkerID, "#hb": attrHeartbeat, "#n": attrNonce, "#m": attrMaxLeases}
	values := map[string]types.AttributeValue{":et": str(entityWorker), ":id": str(w.ID), ":one": num(1), ":zero": num(0), ":n": str(w.Nonce)}
	expr := "SET #et = :et, #id = :id, #n = :n, #hb = if_not_exists(#hb, :zero) + :one"
	if w.MaxLeases > 0 {
		values[":m"] = num(w.MaxLeases)
		expr += ", #m = :m"
	} else {
		expr += " REMOVE #m"
	}
	_, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.name, Key: keyOf(workerKey(w.ID)), UpdateExpression: &expr,
		// Never turns a lease into a worker item.
		ConditionExpression:       aws.String("attribute_not_exists(#k) OR #et = :et"),
		ExpressionAttributeNames:  withKey(names),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return nil
}

func withKey(names map[string]string) map[string]string {
	names["#k"] = attrKey
	return names
}

// DeregisterWorker deletes the worker item of id, when the worker stops.
func (t *Table) DeregisterWorker(ctx context.Context, id string) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &t.name, Key: keyOf(workerKey(id)),
		ConditionExpression:       aws.String("#et = :et"),
		ExpressionAttributeNames:  map[string]string{"#et": attrEntityType},
		ExpressionAttributeValues: map[string]types.AttributeValue{":et": str(entityWorker)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("deregister worker %s: %w", id, err)
	}
	return nil
}

// DeleteWorker deletes the item of a worker that is gone, if its
// heartbeat is still w's.
func (t *Table) DeleteWorker(ctx context.Context, w WorkerItem) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &t.name, Key: keyOf(workerKey(w.ID)),
		ConditionExpression:       aws.String("#et = :et AND #hb = :hb"),
		ExpressionAttributeNames:  map[string]string{"#et": attrEntityType, "#hb": attrHeartbeat},
		ExpressionAttributeValues: map[string]types.AttributeValue{":et": str(entityWorker), ":hb": num(w.Heartbeat)},
	})
	if err != nil {
		return fmt.Errorf("delete the item of worker %s: %w", w.ID, err)
	}
	return nil
}

// Leader reads the leader lock (eventually consistent); ok is false when
// there is none.
func (t *Table) Leader(ctx context.Context) (lock LeaderLock, ok bool, err error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.name, Key: keyOf(LeaderKey)})
	if err != nil {
		return LeaderLock{}, false, fmt.Errorf("read the leader lock of %s: %w", t.name, err)
	}
	if len(out.Item) == 0 {
		return LeaderLock{}, false, nil
	}
	return *decodeLock(out.Item), true, nil
}

// AcquireLeader makes owner the leader for duration: when there is no
// lock (prev nil), or the lock is still as prev was read (its holder has
// not renewed it since). It returns the lock written; ErrNotLeader when
// someone else got there first.
func (t *Table) AcquireLeader(ctx context.Context, owner string, duration time.Duration, prev *LeaderLock) (LeaderLock, error) {
	lock := LeaderLock{Owner: owner, Version: newVersion(), Duration: duration}
	in := &dynamodb.PutItemInput{
		TableName: &t.name,
		Item: map[string]types.AttributeValue{
			attrKey: str(LeaderKey), attrEntityType: str(entityLeader), attrLockOwner: str(owner),
			attrLockDuration: str(strconv.FormatInt(duration.Milliseconds(), 10)), attrLockVersion: str(lock.Version),
		},
	}
	if prev == nil {
		in.ConditionExpression = aws.String("attribute_not_exists(#k)")
		in.ExpressionAttributeNames = map[string]string{"#k": attrKey}
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": attrLockVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": str(prev.Version)}
	}
	_, err := t.db.PutItem(ctx, in)
	if isConditionFailed(err) {
		return LeaderLock{}, ErrNotLeader
	}
	if err != nil {
		return LeaderLock{}, fmt.Errorf("acquire the leader lock of %s: %w", t.name, err)
	}
	return lock, nil
}

// RenewLeader moves the lock's version on, proving its holder alive.
func (t *Table) RenewLeader(ctx context.Context, lock LeaderLock) (LeaderLock, error) {
	next := lock
	next.Version = newVersion()
	_, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &t.name, Key: keyOf(LeaderKey),
		UpdateExpression:          aws.String("SET #v = :next"),
		ConditionExpression:       aws.String("#v = :v AND #o = :o"),
		ExpressionAttributeNames:  map[string]string{"#v": attrLockVersion, "#o": attrLockOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(lock.Version), ":o": str(lock.Owner), ":next": str(next.Version)},
	})
	if isConditionFailed(err) {
		return LeaderLock{}, ErrNotLeader
	}
	if err != nil {
		return LeaderLock{}, fmt.Errorf("renew the leader lock of %s: %w", t.name, err)
	}
	return next, nil
}

// ReleaseLeader deletes the lock if it is still lock, so that another
// worker leads at once.
func (t *Table) ReleaseLeader(ctx context.Context, lock LeaderLock) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &t.name, Key: keyOf(LeaderKey),
		ConditionExpression:       aws.String("#v = :v AND #o = :o"),
		ExpressionAttributeNames:  map[string]string{"#v": attrLockVersion, "#o": attrLockOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(lock.Version), ":o": str(lock.Owner)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release the leader lock of %s: %w", t.name, err)
	}
	return nil
}

func newVersion() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Remove deletes a lease, on condition that its counter is still l's (a
// lease of a stream the application no longer reads, once its waiting
// period is over).
func (t *Table) Remove(ctx context.Context, l Lease) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &t.name,
		Key:                       keyOf(l.Key),
		ConditionExpression:       aws.String("#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCounter},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": num(l.Counter)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("remove lease %s: %w", l.Key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("remove lease %s: %w", l.Key, err)
	}
	return nil
}
