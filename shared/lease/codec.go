package lease

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func keyOf(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: str(key)}
}

// kbps renders a throughputKBps value: a decimal with three places at
// most (DynamoDB refuses numbers below 1e-130, which the shortest form of
// a float64 could be).
func kbps(v float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)}
}

// itemKind is what an item of the lease table is to a single-stream
// worker.
type itemKind int

const (
	kindLease       itemKind = iota
	kindNotLease             // KCL 3.5's other entities: the leader lock, migration states, worker metrics
	kindMultiStream          // a multi-stream application's lease
)

// kindOf tells a lease item from KCL 3.5's other entities (an entityType
// present and not LEASE; leases written before 3.5 have none) and from a
// multi-stream application's leases (keyed account:stream:epoch:shardId,
// with streamName), which a single-stream worker leaves alone. Shard ids
// hold no colon.
func kindOf(item map[string]types.AttributeValue) itemKind {
	if v, ok := item[attrEntityType]; ok {
		if s, isS := v.(*types.AttributeValueMemberS); !isS || s.Value != entityLease {
			return kindNotLease
		}
	}
	if _, ok := item[attrStreamName]; ok {
		return kindMultiStream
	}
	if key, _ := getS(item, attrKey, false); strings.Contains(key, ":") {
		return kindMultiStream
	}
	return kindLease
}

// encode renders l as a KCL lease item (with KCL 3.5's entityType).
func encode(l Lease) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrEntityType:    str(entityLease),
		attrKey:           str(l.Key),
		attrCounter:       num(l.Counter),
		attrCheckpoint:    str(l.Checkpoint.Seq),
		attrCheckpointSub: num(l.Checkpoint.SubSeq),
		attrOwnerSwitches: num(l.OwnerSwitchesSinceCheckpoint),
	}
	if l.Owner != "" {
		item[attrOwner] = str(l.Owner)
	}
	if l.StreamID != "" {
		item[attrStreamName] = str(l.StreamID)
		item[attrShardID] = str(l.ShardID)
	}
	if l.CheckpointOwner != "" {
		item[attrCheckpointOwner] = str(l.CheckpointOwner)
	}
	if l.ThroughputKBps != 0 {
		item[attrThroughput] = kbps(l.ThroughputKBps)
	}
	if len(l.ParentShardIDs) > 0 {
		item[attrParents] = &types.AttributeValueMemberSS{Value: l.ParentShardIDs}
	}
	if len(l.ChildShardIDs) > 0 {
		item[attrChildren] = &types.AttributeValueMemberSS{Value: l.ChildShardIDs}
	}
	if l.StartingHashKey != "" {
		item[attrStartHash] = str(l.StartingHashKey)
	}
	if l.EndingHashKey != "" {
		item[attrEndHash] = str(l.EndingHashKey)
	}
	if !l.Timestamp.IsZero() {
		item[attrTimestamp] = str(l.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	if l.Nonce != "" {
		item[attrNonce] = str(l.Nonce)
	}
	if l.OwnerMaxLeases > 0 {
		item[attrOwnerMax] = num(l.OwnerMaxLeases)
	}
	if l.Reader != "" {
		item[attrReader] = str(l.Reader)
	}
	if p := l.Park; p != nil {
		item[attrParked] = str(p.Reason)
		item[attrParkedSince] = str(p.Since.UTC().Format(time.RFC3339Nano))
		item[attrParkedUntil] = str(p.Until.UTC().Format(time.RFC3339Nano))
		item[attrParkCount] = num(p.Count)
	}
	if l.DroppedOutOfRange != 0 {
		item[attrDropped] = num(l.DroppedOutOfRange)
	}
	if l.RecordsHandled != 0 {
		item[attrHandled] = num(l.RecordsHandled)
	}
	return item
}

// decode reads a lease item (kindOf says it is one), tolerating the
// attributes other KCL versions add (they are ignored).
func decode(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	var err error
	if l.Key, err = getS(item, attrKey, true); err != nil {
		return Lease{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("lease %s: %w", l.Key, err) }
	if l.Owner, err = getS(item, attrOwner, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.CheckpointOwner, err = getS(item, attrCheckpointOwner, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.StreamID, err = getS(item, attrStreamName, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.ShardID, err = getS(item, attrShardID, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.StreamID != "" && l.ShardID == "" {
		return Lease{}, wrap(fmt.Errorf("attribute %s is missing (a multi-stream lease has %s and %s)", attrShardID, attrStreamName, attrShardID))
	}
	if _, ok := item[attrCounter]; !ok {
		return Lease{}, wrap(fmt.Errorf("attribute %s is missing", attrCounter))
	}
	if l.Counter, err = getN(item, attrCounter); err != nil {
		return Lease{}, wrap(err)
	}
	if l.Checkpoint.Seq, err = getS(item, attrCheckpoint, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.Checkpoint.SubSeq, err = getN(item, attrCheckpointSub); err != nil {
		return Lease{}, wrap(err)
	}
	if l.OwnerSwitchesSinceCheckpoint, err = getN(item, attrOwnerSwitches); err != nil {
		return Lease{}, wrap(err)
	}
	if l.ParentShardIDs, err = getSS(item, attrParents); err != nil {
		return Lease{}, wrap(err)
	}
	if l.ChildShardIDs, err = getSS(item, attrChildren); err != nil {
		return Lease{}, wrap(err)
	}
	if len(l.ChildShardIDs) == 0 { // as some KCL 2.x versions named it
		if l.ChildShardIDs, err = getSS(item, "childShardId"); err != nil {
			return Lease{}, wrap(err)
		}
	}
	if l.StartingHashKey, err = getS(item, attrStartHash, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.EndingHashKey, err = getS(item, attrEndHash, false); err != nil {
		return Lease{}, wrap(err)
	}
	if l.Timestamp, err = getTime(item, attrTimestamp); err != nil {
		return Lease{}, wrap(err)
	}
	if l.Nonce, err = getS(item, attrNonce, false); err != nil {
		return Lease{}, wrap(err)
	}
	// Shardline's own attributes below are for display and parking: a
	// malformed value is read as absent rather than making the lease
	// unreadable.
	if reason, _ := getS(item, attrParked, false); reason != "" {
		p := &Park{Reason: reason}
		p.Since, _ = getTime(item, attrParkedSince)
		p.Until, _ = getTime(item, attrParkedUntil)
		p.Count, _ = getN(item, attrParkCount)
		l.Park = p
	}
	l.OwnerMaxLeases, _ = getN(item, attrOwnerMax)
	l.Reader, _ = getS(item, attrReader, false)
	l.DroppedOutOfRange, _ = getN(item, attrDropped)
	l.RecordsHandled, _ = getN(item, attrHandled)
	l.MillisBehindLatest, _ = getN(item, attrBehind)
	l.LastRenewal, _ = getTime(item, attrLastRenewal)
	l.ThroughputKBps, _ = getF(item, attrThroughput)
	if _, ok := item[attrLastRenewal]; !ok { // as earlier versions named them
		l.MillisBehindLatest, _ = getN(item, attrBehindV1)
		l.LastRenewal, _ = getTime(item, attrLastRenewalV1)
	}
	return l, nil
}

func getTime(item map[string]types.AttributeValue, name string) (time.Time, error) {
	s, err := getS(item, name, false)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s = %q: want an RFC 3339 time", name, s)
	}
	return t, nil
}

func getS(item map[string]types.AttributeValue, name string, required bool) (string, error) {
	v, ok := item[name]
	if !ok {
		if required {
			return "", fmt.Errorf("attribute %s is missing", name)
		}
		return "", nil
	}
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value, nil
	case *types.AttributeValueMemberNULL:
		return "", nil
	}
	return "", fmt.Errorf("attribute %s is %T, want a string (S)", name, v)
}

// number returns the text of the number attribute name ("" when absent).
func number(item map[string]types.AttributeValue, name string) (string, error) {
	v, ok := item[name]
	if !ok {
		return "", nil
	}
	n, isN := v.(*types.AttributeValueMemberN)
	if !isN {
		return "", fmt.Errorf("attribute %s is %T, want a number (N)", name, v)
	}
	return n.Value, nil
}

func getN(item map[string]types.AttributeValue, name string) (int64, error) {
	s, err := number(item, name)
	if s == "" || err != nil {
		return 0, err
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s = %q: want an integer", name, s)
	}
	return i, nil
}

// getF reads a number that may have a fraction or an exponent (as Java's
// Double.toString writes them: "12.5", "1.0E-4").
func getF(item map[string]types.AttributeValue, name string) (float64, error) {
	s, err := number(item, name)
	if s == "" || err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s = %q: want a number", name, s)
	}
	return f, nil
}

func getSS(item map[string]types.AttributeValue, name string) ([]string, error) {
	v, ok := item[name]
	if !ok {
		return nil, nil
	}
	switch v := v.(type) {
	case *types.AttributeValueMemberSS:
		return v.Value, nil
	case *types.AttributeValueMemberL: // some writers store a list
		out := make([]string, 0, len(v.Value))
		for _, e := range v.Value {
			s, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("attribute %s holds %T, want strings", name, e)
			}
			out = append(out, s.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("attribute %s is %T, want a string set (SS)", name, v)
}
