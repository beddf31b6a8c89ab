// Package leasetest builds lease-table items as the Java KCL writes them,
// attribute by attribute, for tests: the lease package's own encoding
// proves nothing about compatibility.
package leasetest

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// N is a number as Java wrote it ("12.5", "1.0E-4").
func N(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

// KCLLease is a lease as KCL 3.5.1's DynamoDBLeaseSerializer (or, with
// StreamName, DynamoDBMultiStreamLeaseSerializer) writes it.
type KCLLease struct {
	Key             string
	Owner           string // leaseOwner; "" none
	CheckpointOwner string // set by the leader's graceful handoff; "" none
	Counter         int64
	Checkpoint      string
	SubSeq          int64
	OwnerSwitches   int64
	Parents         []string
	Children        []string
	StartingHashKey string
	EndingHashKey   string
	ThroughputKBps  string // as Double.toString wrote it; "" none
	// A prepared checkpoint (prepareCheckpoint), as a checkpoint update
	// writes it: state as binary.
	PendingCheckpoint string
	PendingSubSeq     int64
	PendingState      []byte
	// Multi-stream: StreamName is account:stream:creationEpoch, and Key
	// StreamName:ShardID.
	StreamName string
	ShardID    string
}

// Item is the lease's item.
func (l KCLLease) Item() map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		"leaseKey":                     s(l.Key),
		"leaseCounter":                 n(l.Counter),
		"ownerSwitchesSinceCheckpoint": n(l.OwnerSwitches),
		"checkpoint":                   s(l.Checkpoint),
		"checkpointSubSequenceNumber":  n(l.SubSeq),
		"entityType":                   s("LEASE"),
	}
	opt := func(name, v string) {
		if v != "" {
			item[name] = s(v)
		}
	}
	opt("leaseOwner", l.Owner)
	opt("checkpointOwner", l.CheckpointOwner)
	opt("startingHashKey", l.StartingHashKey)
	opt("endingHashKey", l.EndingHashKey)
	opt("streamName", l.StreamName)
	opt("shardId", l.ShardID)
	if len(l.Parents) > 0 {
		item["parentShardId"] = &types.AttributeValueMemberSS{Value: l.Parents}
	}
	if len(l.Children) > 0 {
		item["childShardIds"] = &types.AttributeValueMemberSS{Value: l.Children}
	}
	if l.ThroughputKBps != "" {
		item["throughputKBps"] = N(l.ThroughputKBps)
	}
	if l.PendingCheckpoint != "" {
		item["pendingCheckpoint"] = s(l.PendingCheckpoint)
		item["pendingCheckpointSubSequenceNumber"] = n(l.PendingSubSeq)
	}
	if l.PendingState != nil {
		item["pendingCheckpointState"] = &types.AttributeValueMemberB{Value: l.PendingState}
	}
	return item
}

// KCL351Entities are the items other than leases that KCL 3.5.1 keeps in
// a single lease table, by leaseKey: the leader lock (written by the
// DynamoDB lock client, with LeaderLock's entityType), the client-version
// and table migration states (MigrationState, TableMigrationState, with a
// history entry) and the worker metrics (WorkerMetricStats as the lease
// table's DAO maps it) of each worker named. None has a leaseCounter.
func KCL351Entities(leader string, workers ...string) map[string]map[string]types.AttributeValue {
	const mts = 1767366245000
	history := func(status, name string) types.AttributeValue {
		return &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			name: s(status), "mb": s(leader), "mts": n(mts - 3600_000),
		}}}}
	}
	items := map[string]map[string]types.AttributeValue{
		"Leader": {
			"leaseKey": s("Leader"), "entityType": s("LEADER"), "ownerName": s(leader),
			"leaseDuration": s("20000"), "recordVersionNumber": s("2f1d3a7e-6c3b-4b8e-9b0a-3f5c2d1e0a9b"),
		},
		"Migration3.0": {
			"leaseKey": s("Migration3.0"), "entityType": s("CLIENT_VERSION_MIGRATION"), "cv": s("CLIENT_VERSION_3X"),
			"mb": s(leader), "mts": n(mts), "h": history("CLIENT_VERSION_3X_WITH_ROLLBACK", "cv"),
		},
		"TableMigration3.5": {
			"leaseKey": s("TableMigration3.5"), "entityType": s("TABLE_MIGRATION"), "tm": s("TABLE_MIGRATION_STATUS_COMPLETE"),
			"mb": s(leader), "mts": n(mts), "h": history("TABLE_MIGRATION_STATUS_PENDING", "tm"),
		},
	}
	list := func(vs ...string) types.AttributeValue {
		l := &types.AttributeValueMemberL{}
		for _, v := range vs {
			l.Value = append(l.Value, N(v))
		}
		return l
	}
	for _, w := range workers {
		items[w] = map[string]types.AttributeValue{
			"leaseKey": s(w), "entityType": s("WORKER_METRIC_STATS"), "lut": n(mts / 1000),
			// Keyed by WorkerMetricType's short name (C: CPU); properties
			// are null, and left out (ignoreNulls).
			"sts": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": list("12.5", "14.0", "9.75")}},
			"opr": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"C": list("100")}},
			"sup": n(1), "slu": n(mts / 1000),
		}
	}
	return items
}
