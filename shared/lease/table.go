package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/stream"
)

// Attribute names, as the KCL 2.x writes them, and those KCL 3.x added.
const (
	attrKey           = "leaseKey"
	attrOwner         = "leaseOwner"
	attrCounter       = "leaseCounter"
	attrCheckpoint    = "checkpoint"
	attrCheckpointSub = "checkpointSubSequenceNumber"
	attrOwnerSwitches = "ownerSwitchesSinceCheckpoint"
	attrParents       = "parentShardId"
	attrChildren      = "childShardIds"
	attrStartHash     = "startingHashKey"
	attrEndHash       = "endingHashKey"
	// KCL 3.x's. pendingCheckpoint, pendingCheckpointSubSequenceNumber and
	// pendingCheckpointState (a prepared checkpoint) are never written or
	// removed: Shardline's writes name the attributes they change.
	attrCheckpointOwner = "checkpointOwner" // the holder while a graceful handoff is under way
	attrThroughput      = "throughputKBps"
	attrEntityType      = "entityType" // KCL 3.5: LEASE, or another entity sharing the table
	attrStreamName      = "streamName" // a multi-stream lease's stream (account:stream:creationEpoch)
	attrShardID         = "shardId"    // a multi-stream lease's shard
	entityLease         = "LEASE"
	// Shardline's own, ignored by the KCL.
	attrTimestamp   = "shardlineTimestamp"
	attrNonce       = "shardlineNonce"
	attrOwnerMax    = "shardlineOwnerMaxLeases"
	attrReader      = "shardlineReader"
	attrParked      = "shardlineParked" // the reason
	attrParkedSince = "shardlineParkedSince"
	attrParkedUntil = "shardlineParkedUntil"
	attrParkCount   = "shardlineParkCount"
	attrDropped     = "shardlineDroppedOutOfRange"
	attrHandled     = "shardlineRecordsHandled"
	attrLastRenewal = "shardlineLastRenewal"
	attrBehind      = "shardlineMillisBehindLatest"
	// Names earlier versions used for the last two.
	attrLastRenewalV1 = "lastRenewal"
	attrBehindV1      = "millisBehindLatest"
)

// parkAttrs are removed when a shard gets going again.
var parkAttrs = []string{attrParked, attrParkedSince, attrParkedUntil, attrParkCount}

// DynamoDBAPI lists the DynamoDB calls the lease table makes.
type DynamoDBAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// Table is an application's lease table. It is safe for concurrent use; the
// caller serialises writes to one lease (each write needs the counter the
// previous one returned).
type Table struct {
	db        DynamoDBAPI
	name      string
	multi     bool // a multi-stream application's table (WithMultiStream)
	nonce     string
	maxLeases int
	reader    string
}

// NewTable returns the lease table called name (the application name).
func NewTable(db DynamoDBAPI, name string) *Table { return &Table{db: db, name: name} }

// WithNonce returns a copy of t whose takes record nonce, naming the
// taking process, so that two processes with one worker id can be told
// apart.
func (t *Table) WithNonce(nonce string) *Table {
	c := *t
	c.nonce = nonce
	return &c
}

// WithMaxLeases returns a copy of t whose takes record the taker's
// -max-leases (0: none), which other workers count as its capacity.
func (t *Table) WithMaxLeases(n int) *Table {
	c := *t
	c.maxLeases = n
	return &c
}

// WithReader returns a copy of t whose takes record how the taker reads
// the shard ("polling", "fan-out"), for `status`.
func (t *Table) WithReader(mode string) *Table {
	c := *t
	c.reader = mode
	return &c
}

// WithMultiStream returns a copy of t for a multi-stream application
// (KCL's multi-stream mode): its leases are those keyed
// account:stream:creationEpoch:shardId, and single-stream leases are not
// its own (Scanned.SingleStream).
func (t *Table) WithMultiStream() *Table {
	c := *t
	c.multi = true
	return &c
}

// Name is the table's name.
func (t *Table) Name() string { return t.name }

// Ensure creates the table (PAY_PER_REQUEST, hash key leaseKey, with KCL
// 3.x's LeaseOwnerToLeaseKeyIndex) if it does not exist and waits until it
// is ACTIVE; a table without the index gets it (it is not waited for).
func (t *Table) Ensure(ctx context.Context) error {
	// Few retries here, so that an endpoint that does not answer is
	// reported at start-up instead of after the full back-off.
	out, err := t.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &t.name},
		func(o *dynamodb.Options) {
			o.RetryMaxAttempts = 2
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 200*time.Millisecond)
		})
	if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
		return t.ensureIndex(ctx, out.Table)
	}
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("describe lease table %s: %w", t.name, err)
	}
	existed := err == nil && out.Table != nil
	if err != nil {
		_, err = t.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &t.name,
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: keyAttributes(),
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String(OwnerIndex),
				KeySchema:  ownerIndexKeys(),
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			}},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create lease table %s: %w", t.name, err)
		}
	}
	w := dynamodb.NewTableExistsWaiter(t.db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 200 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &t.name}, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for lease table %s: %w", t.name, err)
	}
	if existed { // not yet ACTIVE when described
		return t.ensureIndex(ctx, out.Table)
	}
	return nil
}

// BadItem is a lease item that does not decode. It concerns only its own
// shard: the others are listed as usual.
type BadItem struct {
	Key     string // leaseKey, "" when even that is unreadable
	Problem string
	// MissingCounter is true when the only problem is a missing
	// leaseCounter, which RepairCounter mends.
	MissingCounter bool
}

// Scanned is what a scan of the table found. Items of KCL 3.5's other
// entities sharing the table (entityType present and not LEASE: the
// leader lock, migration states, worker metrics) are not leases and are
// left out of all three.
type Scanned struct {
	Leases []Lease
	Bad    []BadItem // lease items that do not decode
	// MultiStream lists the keys of a multi-stream application's leases
	// (account:stream:epoch:shardId, with streamName): not this
	// single-stream application's shards, left alone.
	MultiStream []string
	// SingleStream lists, in a multi-stream application's table, the keys
	// of single-stream leases (a shard id alone).
	SingleStream []string
	// Workers are the Shardline workers' items; Leader the leader lock
	// (nil: none).
	Workers []WorkerItem
	Leader  *LeaderLock
}

// List reads every lease with a consistent scan, leaving out items that
// do not decode (Scan reports them).
func (t *Table) List(ctx context.Context) ([]Lease, error) {
	s, err := t.Scan(ctx)
	return s.Leases, err
}

// Scan reads the table with a consistent scan: the leases, the lease items
// that do not decode, the keys of multi-stream leases, the workers and
// the leader lock.
func (t *Table) Scan(ctx context.Context) (Scanned, error) { return t.scan(ctx, true) }

// ScanEventually is Scan with an eventually consistent read (half the
// read units): a write of the last second may be missing.
func (t *Table) ScanEventually(ctx context.Context) (Scanned, error) { return t.scan(ctx, false) }

func (t *Table) scan(ctx context.Context, consistent bool) (Scanned, error) {
	var s Scanned
	in := &dynamodb.ScanInput{TableName: &t.name, ConsistentRead: aws.Bool(consistent)}
	for {
		out, err := t.db.Scan(ctx, in)
		if err != nil {
			return Scanned{}, fmt.Errorf("list leases in %s: %w", t.name, err)
		}
		for _, item := range out.Items {
			switch k := kindOf(item); {
			case k == kindNotLease:
				decodeOther(item, &s)
				continue
			case k == kindMultiStream && !t.multi:
				key, _ := getS(item, attrKey, false)
				s.MultiStream = append(s.MultiStream, key)
				continue
			case k == kindLease && t.multi:
				key, _ := getS(item, attrKey, false)
				s.SingleStream = append(s.SingleStream, key)
				continue
			}
			l, err := decode(item)
			if err != nil {
				key, _ := getS(item, attrKey, false)
				_, hasCounter := item[attrCounter]
				_, again := decode(withCounter(item))
				s.Bad = append(s.Bad, BadItem{Key: key, Problem: err.Error(), MissingCounter: !hasCounter && key != "" && again == nil})
				continue
			}
			s.Leases = append(s.Leases, l)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return s, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// leaseKind is the kind of item that is this table's lease.
func (t *Table) leaseKind() itemKind {
	if t.multi {
		return kindMultiStream
	}
	return kindLease
}

func withCounter(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	c := make(map[string]types.AttributeValue, len(item)+1)
	for k, v := range item {
		c[k] = v
	}
	c[attrCounter] = num(0)
	return c
}

// RepairCounter gives a lease item without a leaseCounter the counter 0,
// as the KCL starts one, on condition that it still has none and is a
// lease (KCL 3.5's other entities have no counter, and are never touched).
func (t *Table) RepairCounter(ctx context.Context, key string) error {
	_, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &t.name,
		Key:              keyOf(key),
		UpdateExpression: aws.String("SET #c = :zero"),
		ConditionExpression: aws.String("attribute_exists(#k) AND attribute_not_exists(#c)" +
			" AND (attribute_not_exists(#et) OR #et = :lease) AND attribute_not_exists(#sn)"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCounter, "#k": attrKey, "#et": attrEntityType, "#sn": attrStreamName},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":lease": str(entityLease)},
	})
	if isConditionFailed(err) {
		return nil // repaired by someone else, or deleted
	}
	if err != nil {
		return fmt.Errorf("repair the counter of lease %s: %w", key, err)
	}
	return nil
}

// Get reads one lease; ok is false when there is none (or the item is
// not a lease of this kind: see Scanned).
func (t *Table) Get(ctx context.Context, key string) (l Lease, ok bool, err error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.name, Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Lease{}, false, fmt.Errorf("get lease %s: %w", key, err)
	}
	if len(out.Item) == 0 || kindOf(out.Item) != t.leaseKind() {
		return Lease{}, false, nil
	}
	l, err = decode(out.Item)
	if err != nil {
		return Lease{}, false, fmt.Errorf("get lease %s: %w", key, err)
	}
	return l, true, nil
}

// Create writes a new lease if none exists for its key; ErrLeaseExists otherwise.
func (t *Table) Create(ctx context.Context, l Lease) error {
	_, err := t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &t.name,
		Item:                encode(l),
		ConditionExpression: aws.String("attribute_not_exists(" + attrKey + ")"),
	})
	if isConditionFailed(err) {
		return fmt.Errorf("create lease %s: %w", l.Key, ErrLeaseExists)
	}
	if err != nil {
		return fmt.Errorf("create lease %s: %w", l.Key, err)
	}
	return nil
}

// Take makes owner the holder of l, as last read (owners and counter): a
// claim of an unowned lease, the take-over of an expired one, or a steal.
// It ends a KCL 3.x graceful handoff (removes checkpointOwner); the caller
// decides when a lease mid-handoff may be taken. The table's nonce
// (WithNonce) is recorded with the owner.
func (t *Table) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	u := update{set: map[string]types.AttributeValue{attrOwner: str(owner)}, remove: []string{attrCheckpointOwner}}
	if l.Holder() != owner {
		u.set[attrOwnerSwitches] = num(l.OwnerSwitchesSinceCheckpoint + 1)
	}
	if t.nonce != "" {
		u.set[attrNonce] = str(t.nonce)
	} else {
		u.remove = append(u.remove, attrNonce)
	}
	if t.maxLeases > 0 {
		u.set[attrOwnerMax] = num(int64(t.maxLeases))
	} else {
		u.remove = append(u.remove, attrOwnerMax)
	}
	if t.reader != "" {
		u.set[attrReader] = str(t.reader)
	} else {
		u.remove = append(u.remove, attrReader)
	}
	out, err := t.write(ctx, l, u, true)
	if err != nil {
		return Lease{}, fmt.Errorf("take lease %s: %w", l.Key, err)
	}
	return out, nil
}

// Renew moves l's counter on, proving its holder is alive, and records
// the holder's progress for `status`.
func (t *Table) Renew(ctx context.Context, l Lease, p Progress) (Lease, error) {
	u := update{set: map[string]types.AttributeValue{}}
	progressUpdate(&u, p)
	out, err := t.write(ctx, l, u, false)
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease %s: %w", l.Key, err)
	}
	return out, nil
}

// progressUpdate adds what a renewal writes to u.
func progressUpdate(u *update, p Progress) {
	u.set[attrLastRenewal] = str(p.Time.UTC().Format(time.RFC3339Nano))
	u.set[attrBehind] = num(p.MillisBehindLatest)
	if u.add == nil {
		u.add = map[string]int64{}
	}
	if p.DroppedOutOfRange > 0 {
		u.add[attrDropped] = p.DroppedOutOfRange
	}
	if p.RecordsHandled > 0 {
		u.add[attrHandled] = p.RecordsHandled
	}
	if p.ThroughputKBps >= 0 {
		u.set[attrThroughput] = kbps(p.ThroughputKBps)
	}
}

// Checkpoint records pos as done for l. At SHARD_END, children (if any) are
// recorded as childShardIds. A parked lease that gets this far is no
// longer parked. With p, the write also does what Renew(p) does (a
// checkpoint moves the counter as a renewal does), so that a shard
// checkpointing often needs no renewals of its own.
func (t *Table) Checkpoint(ctx context.Context, l Lease, pos stream.Position, children []string, p ...Progress) (Lease, error) {
	u := checkpointUpdate(pos, children)
	if len(p) > 0 {
		progressUpdate(&u, p[0])
	}
	out, err := t.write(ctx, l, u, false)
	if err != nil {
		return Lease{}, fmt.Errorf("checkpoint %s at %s: %w", l.Key, pos, err)
	}
	return out, nil
}

// CheckpointAt sets l's checkpoint to AT_TIMESTAMP ts: where a lease at
// LATEST really starts, fixed once so that no later owner skips what was
// written meanwhile.
func (t *Table) CheckpointAt(ctx context.Context, l Lease, ts time.Time) (Lease, error) {
	u := checkpointUpdate(stream.Position{Seq: stream.AtTimestamp}, nil)
	u.set[attrTimestamp] = str(ts.UTC().Format(time.RFC3339Nano))
	u.remove = parkAttrs
	out, err := t.write(ctx, l, u, false)
	if err != nil {
		return Lease{}, fmt.Errorf("checkpoint %s at %s: %w", l.Key, ts.UTC().Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// Release gives l up so another worker can take it at once, writing the
// final checkpoint pos first when it is not nil. Mid-handoff (l's
// checkpointOwner is the caller) it passes the lease to its next owner
// instead: checkpointOwner is removed and leaseOwner kept, as KCL 3.x
// ends a graceful handoff.
func (t *Table) Release(ctx context.Context, l Lease, pos *stream.Position) error {
	give := []string{attrOwner}
	if l.MidHandoff() {
		// The nonce goes too: the next owner finds the lease under its
		// name without one, as given to it.
		give = []string{attrCheckpointOwner, attrNonce}
	}
	u := update{remove: give}
	if pos != nil {
		u = checkpointUpdate(*pos, nil)
		u.remove = append(u.remove, give...)
	}
	if _, err := t.write(ctx, l, u, false); err != nil {
		return fmt.Errorf("release lease %s: %w", l.Key, err)
	}
	return nil
}

// Park gives l up as parked: it writes the final checkpoint pos (when not
// nil), the reason and the time before which no worker takes it.
func (t *Table) Park(ctx context.Context, l Lease, pos *stream.Position, p Park) error {
	u := update{set: map[string]types.AttributeValue{}, remove: []string{attrOwner, attrCheckpointOwner}}
	if pos != nil {
		u = checkpointUpdate(*pos, nil)
		u.remove = []string{attrOwner, attrCheckpointOwner, attrTimestamp}
	}
	u.set[attrParked] = str(p.Reason)
	u.set[attrParkedSince] = str(p.Since.UTC().Format(time.RFC3339Nano))
	u.set[attrParkedUntil] = str(p.Until.UTC().Format(time.RFC3339Nano))
	u.set[attrParkCount] = num(p.Count)
	if _, err := t.write(ctx, l, u, false); err != nil {
		return fmt.Errorf("park lease %s: %w", l.Key, err)
	}
	return nil
}

// ErrNotParked is returned by Resume for a lease that is not parked.
var ErrNotParked = errors.New("lease is not parked")

// Resume clears a lease's park so that it is taken and retried at once.
// It leaves the owner and counter as they are, so a worker holding the
// lease keeps it.
func (t *Table) Resume(ctx context.Context, key string) error {
	names := map[string]string{"#k": attrKey}
	expr := "REMOVE "
	for i, a := range parkAttrs {
		n := "#p" + strconv.Itoa(i)
		names[n] = a
		if i > 0 {
			expr += ", "
		}
		expr += n
	}
	_, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &t.name,
		Key:                      keyOf(key),
		UpdateExpression:         &expr,
		ConditionExpression:      aws.String("attribute_exists(#k) AND attribute_exists(#p0)"),
		ExpressionAttributeNames: names,
	})
	if isConditionFailed(err) {
		return fmt.Errorf("resume lease %s: %w", key, ErrNotParked)
	}
	if err != nil {
		return fmt.Errorf("resume lease %s: %w", key, err)
	}
	return nil
}

// Delete removes an ended lease (checkpoint SHARD_END), once its children
// have taken over. It is conditional on the checkpoint and counter.
func (t *Table) Delete(ctx context.Context, l Lease) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           &t.name,
		Key:                 keyOf(l.Key),
		ConditionExpression: aws.String("#ck = :end AND #c = :c"),
		ExpressionAttributeNames: map[string]string{
			"#ck": attrCheckpoint, "#c": attrCounter,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":end": str(stream.ShardEnd), ":c": num(l.Counter),
		},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("delete lease %s: %w", l.Key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", l.Key, err)
	}
	return nil
}

// SetCheckpoint moves a lease's checkpoint regardless of its owner (for
// `reset`, when no worker runs), clearing a park. It is conditional on the
// counter read. For AT_TIMESTAMP, ts is the time (it must not be zero).
func (t *Table) SetCheckpoint(ctx context.Context, l Lease, pos stream.Position, ts time.Time) (Lease, error) {
	if pos.Seq == stream.AtTimestamp && ts.IsZero() {
		return Lease{}, fmt.Errorf("set checkpoint of %s to AT_TIMESTAMP: a timestamp is required", l.Key)
	}
	u := checkpointUpdate(pos, nil)
	u.remove = append(u.remove, attrOwner, attrCheckpointOwner)
	if pos.Seq == stream.AtTimestamp {
		u.set[attrTimestamp] = str(ts.UTC().Format(time.RFC3339Nano))
		u.remove = append([]string{attrOwner, attrCheckpointOwner}, parkAttrs...)
	}
	out, err := t.write(ctx, l, u, true)
	if err != nil {
		return Lease{}, fmt.Errorf("set checkpoint of %s to %s: %w", l.Key, pos, err)
	}
	return out, nil
}

// checkpointUpdate writes pos; a lease that gets a checkpoint is no longer
// parked, and an AT_TIMESTAMP time no longer applies.
func checkpointUpdate(pos stream.Position, children []string) update {
	u := update{set: map[string]types.AttributeValue{
		attrCheckpoint:    str(pos.Seq),
		attrCheckpointSub: num(pos.SubSeq),
		attrOwnerSwitches: num(0),
	}, remove: append([]string{attrTimestamp}, parkAttrs...)}
	if len(children) > 0 {
		u.set[attrChildren] = &types.AttributeValueMemberSS{Value: children}
	}
	return u
}

type update struct {
	set    map[string]types.AttributeValue
	add    map[string]int64
	remove []string
}

// write applies u to l and moves its counter on, on condition that the
// counter is still l.Counter, the owner still l.Owner and the checkpoint
// owner still l.CheckpointOwner (absent when ""): a KCL 3.x leader that
// began a graceful handoff since l was read fails the write. Only a take
// may start from an unowned lease (Owner "", the attribute absent).
func (t *Table) write(ctx context.Context, l Lease, u update, take bool) (Lease, error) {
	names := map[string]string{"#c": attrCounter, "#o": attrOwner, "#co": attrCheckpointOwner}
	values := map[string]types.AttributeValue{":c": num(l.Counter), ":one": num(1)}
	expr := "SET #c = #c + :one"
	i := 0
	for k, v := range u.set {
		n, p := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
		names[n], values[p] = k, v
		expr += ", " + n + " = " + p
		i++
	}
	for k, v := range u.add {
		n, p := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
		names[n], values[p] = k, num(v)
		expr += ", " + n + " = if_not_exists(" + n + ", :zero) + " + p
		values[":zero"] = num(0)
		i++
	}
	if len(u.remove) > 0 {
		expr += " REMOVE"
		for j, k := range u.remove {
			n := "#r" + strconv.Itoa(j)
			names[n] = k
			if j > 0 {
				expr += ","
			}
			expr += " " + n
		}
	}
	cond := "#c = :c AND "
	if l.Owner == "" {
		if !take {
			return Lease{}, fmt.Errorf("lease %s has no owner: %w", l.Key, ErrLeaseLost)
		}
		cond += "attribute_not_exists(#o)"
	} else {
		values[":o"] = str(l.Owner)
		cond += "#o = :o"
	}
	if l.CheckpointOwner == "" {
		cond += " AND attribute_not_exists(#co)"
	} else {
		values[":co"] = str(l.CheckpointOwner)
		cond += " AND #co = :co"
	}
	out, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &t.name,
		Key:                       keyOf(l.Key),
		UpdateExpression:          &expr,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return Lease{}, ErrLeaseLost
	}
	if err != nil {
		return Lease{}, err
	}
	return decode(out.Attributes)
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}
