package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/stream"
)

// Attribute names, as the KCL 2.x writes them.
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
	// Shardline's own, ignored by the KCL.
	attrLastRenewal = "lastRenewal"
	attrBehind      = "millisBehindLatest"
)

// DynamoDBAPI lists the DynamoDB calls the lease table makes.
type DynamoDBAPI interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// Table is an application's lease table. It is safe for concurrent use; the
// caller serialises writes to one lease (each write needs the counter the
// previous one returned).
type Table struct {
	db   DynamoDBAPI
	name string
}

// NewTable returns the lease table called name (the application name).
func NewTable(db DynamoDBAPI, name string) *Table { return &Table{db: db, name: name} }

// Name is the table's name.
func (t *Table) Name() string { return t.name }

// Ensure creates the table (PAY_PER_REQUEST, hash key leaseKey) if it does
// not exist and waits until it is ACTIVE.
func (t *Table) Ensure(ctx context.Context) error {
	// Few retries here, so that an endpoint that does not answer is
	// reported at start-up instead of after the full back-off.
	out, err := t.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &t.name},
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 2 })
	if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
		return nil
	}
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("describe lease table %s: %w", t.name, err)
	}
	if err != nil {
		_, err = t.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &t.name,
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
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
	return nil
}

// List reads every lease with a consistent scan.
func (t *Table) List(ctx context.Context) ([]Lease, error) {
	var leases []Lease
	in := &dynamodb.ScanInput{TableName: &t.name, ConsistentRead: aws.Bool(true)}
	for {
		out, err := t.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list leases in %s: %w", t.name, err)
		}
		for _, item := range out.Items {
			l, err := decode(item)
			if err != nil {
				return nil, fmt.Errorf("list leases in %s: %w", t.name, err)
			}
			leases = append(leases, l)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return leases, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Get reads one lease; ok is false when there is none.
func (t *Table) Get(ctx context.Context, key string) (l Lease, ok bool, err error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &t.name, Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Lease{}, false, fmt.Errorf("get lease %s: %w", key, err)
	}
	if len(out.Item) == 0 {
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

// Take makes owner the holder of l, as last read (owner and counter): a
// claim of an unowned lease, the take-over of an expired one, or a steal.
func (t *Table) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	u := update{set: map[string]types.AttributeValue{attrOwner: str(owner)}}
	if l.Owner != owner {
		u.set[attrOwnerSwitches] = num(l.OwnerSwitchesSinceCheckpoint + 1)
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
	u := update{set: map[string]types.AttributeValue{
		attrLastRenewal: str(p.Time.UTC().Format(time.RFC3339Nano)),
		attrBehind:      num(p.MillisBehindLatest),
	}}
	out, err := t.write(ctx, l, u, false)
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease %s: %w", l.Key, err)
	}
	return out, nil
}

// Checkpoint records pos as done for l. At SHARD_END, children (if any) are
// recorded as childShardIds.
func (t *Table) Checkpoint(ctx context.Context, l Lease, pos stream.Position, children []string) (Lease, error) {
	u := checkpointUpdate(pos, children)
	out, err := t.write(ctx, l, u, false)
	if err != nil {
		return Lease{}, fmt.Errorf("checkpoint %s at %s: %w", l.Key, pos, err)
	}
	return out, nil
}

// Release gives l up so another worker can take it at once, writing the
// final checkpoint pos first when it is not nil.
func (t *Table) Release(ctx context.Context, l Lease, pos *stream.Position) error {
	u := update{remove: []string{attrOwner}}
	if pos != nil {
		u = checkpointUpdate(*pos, nil)
		u.remove = []string{attrOwner}
	}
	if _, err := t.write(ctx, l, u, false); err != nil {
		return fmt.Errorf("release lease %s: %w", l.Key, err)
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
// `reset`, when no worker runs). It is conditional on the counter read.
func (t *Table) SetCheckpoint(ctx context.Context, l Lease, pos stream.Position) (Lease, error) {
	u := checkpointUpdate(pos, nil)
	u.remove = []string{attrOwner}
	out, err := t.write(ctx, l, u, true)
	if err != nil {
		return Lease{}, fmt.Errorf("set checkpoint of %s to %s: %w", l.Key, pos, err)
	}
	return out, nil
}

func checkpointUpdate(pos stream.Position, children []string) update {
	u := update{set: map[string]types.AttributeValue{
		attrCheckpoint:    str(pos.Seq),
		attrCheckpointSub: num(pos.SubSeq),
		attrOwnerSwitches: num(0),
	}}
	if len(children) > 0 {
		u.set[attrChildren] = &types.AttributeValueMemberSS{Value: children}
	}
	return u
}

type update struct {
	set    map[string]types.AttributeValue
	remove []string
}

// write applies u to l and moves its counter on, on condition that the
// counter is still l.Counter and the owner still l.Owner. Only a take may
// start from an unowned lease (Owner "", the attribute absent).
func (t *Table) write(ctx context.Context, l Lease, u update, take bool) (Lease, error) {
	names := map[string]string{"#c": attrCounter, "#o": attrOwner}
	values := map[string]types.AttributeValue{":c": num(l.Counter), ":one": num(1)}
	expr := "SET #c = #c + :one"
	i := 0
	for k, v := range u.set {
		n, p := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
		names[n], values[p] = k, v
		expr += ", " + n + " = " + p
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
