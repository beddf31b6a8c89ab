package produce

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/shards"
)

// kinesisAPI lists the Kinesis calls a producer makes.
type kinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

var _ kinesisAPI = (*kinesis.Client)(nil)

// Producer puts user records on one stream. It is not safe for concurrent use.
type Producer struct {
	client    kinesisAPI
	stream    string
	aggregate int // user records per Kinesis record; <= 1: no aggregation
	shards    []openShard
	ranges    map[string]kpl.HashRange // every listed shard, closed ones too
	// ByKey packs only records of one partition key into an aggregate.
	// Such an aggregate always lands on its key's shard, even while the
	// shard map is stale after a reshard, so nothing is sent twice and
	// each key's records stay in order. Set it before the first Put.
	ByKey bool
	// OnAccepted, if set, is called during Put with the user records of
	// each Kinesis record that Kinesis accepted, as its answers come:
	// what really went out, also when Put then returns an error or its
	// context ends. User records that landed outside their shard's range
	// (after a reshard) are passed only once they are accepted where they
	// belong.
	OnAccepted func([]kpl.UserRecord)
	// GiveUpAfter, if above 0, is how long Put keeps retrying PutRecords
	// calls that fail (an endpoint that does not answer, a service error)
	// before it returns the last error. Zero: until its context ends.
	GiveUpAfter time.Duration
	// Stats
	UserRecords    int64 // user records accepted by Kinesis
	KinesisRecords int64 // Kinesis records accepted
	Retries        int64 // throttled entries sent again, plus user records re-sent after landing outside their shard
}

type openShard struct {
	id    string
	hr    kpl.HashRange
	start string
}

// New returns a producer; aggregate is how many user records to pack in one
// Kinesis record (0 or 1: none).
func New(ctx context.Context, client kinesisAPI, streamName string, aggregate int) (*Producer, error) {
	p := &Producer{client: client, stream: streamName, aggregate: aggregate}
	if aggregate > 1 {
		if err := p.refresh(ctx); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Producer) refresh(ctx context.Context) error {
	list, err := shards.List(ctx, p.client, p.stream)
	if err != nil {
		return err
	}
	p.shards = p.shards[:0]
	p.ranges = make(map[string]kpl.HashRange, len(list))
	for _, s := range list {
		hr, err := kpl.ParseHashRange(s.StartingHashKey, s.EndingHashKey)
		if err != nil {
			return fmt.Errorf("shard %s: %w", s.ID, err)
		}
		p.ranges[s.ID] = hr
		if s.Closed {
			continue
		}
		p.shards = append(p.shards, openShard{id: s.ID, hr: hr, start: s.StartingHashKey})
	}
	if len(p.shards) == 0 {
		return fmt.Errorf("stream %s has no open shards", p.stream)
	}
	sort.Slice(p.shards, func(i, j int) bool { return p.shards[i].hr.Start.Cmp(p.shards[j].hr.Start) < 0 })
	return nil
}

// shardFor returns the index of the open shard whose range holds the key.
func (p *Producer) shardFor(r kpl.UserRecord) int {
	key := r.ExplicitHashKey
	if key == "" {
		key = kpl.PartitionKeyHash(r.PartitionKey)
	}
	for i, s := range p.shards {
		if s.hr.Contains(key) {
			return i
		}
	}
	return 0
}

// entry is one Kinesis record to put and the user records it carries.
type entry struct {
	put   types.PutRecordsRequestEntry
	users []kpl.UserRecord
	shard string // predicted shard ("" without aggregation)
}

// Put sends recs and returns when Kinesis accepted every one of them.
func (p *Producer) Put(ctx context.Context, recs []kpl.UserRecord) error {
	entries, err := p.pack(recs)
	if err != nil {
		return err
	}
	wait := 100 * time.Millisecond
	var failingSince time.Time // of the calls failing in a row
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < 500 {
			sz := len(entries[n].put.Data) + len(aws.ToString(entries[n].put.PartitionKey))
			if n > 0 && size+sz > 5<<20 {
				break
			}
			size += sz
			n++
		}
		batch := entries[:n]
		in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: make([]types.PutRecordsRequestEntry, n)}
		for i := range batch {
			in.Records[i] = batch[i].put
		}
		out, err := p.client.PutRecords(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if fetch.IsFatal(err) || isValidation(err) { // no retry mends these
				return fmt.Errorf("put records to %s: %w", p.stream, err)
			}
			now := time.Now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if p.GiveUpAfter > 0 && now.Sub(failingSince)+wait > p.GiveUpAfter {
				return fmt.Errorf("put records to %s: failing for %s: %w", p.stream, now.Sub(failingSince).Round(time.Millisecond), err)
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		failingSince = time.Time{}
		var again []entry
		var misplaced []kpl.UserRecord
		stale := false
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				again = append(again, batch[i])
				continue
			}
			users := batch[i].users
			if batch[i].shard != "" && aws.ToString(r.ShardId) != batch[i].shard {
				stale = true
				keep, drop, err := p.outside(ctx, users, aws.ToString(r.ShardId))
				if err != nil {
					return err
				}
				users = keep
				misplaced = append(misplaced, drop...)
			}
			p.KinesisRecords++
			p.UserRecords += int64(len(batch[i].users))
			if p.OnAccepted != nil && len(users) > 0 {
				p.OnAccepted(users)
			}
		}
		if stale { // once per answer, so the next records are packed right
			if err := p.refresh(ctx); err != nil {
				return fmt.Errorf("refresh shard map of %s: %w", p.stream, err)
			}
		}
		entries = append(again, entries[n:]...)
		if len(misplaced) > 0 {
			p.UserRecords -= int64(len(misplaced))
			more, err := p.pack(misplaced)
			if err != nil {
				return err
			}
			entries = append(entries, more...)
			p.Retries += int64(len(misplaced))
		}
		if len(again) > 0 {
			p.Retries += int64(len(again))
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			wait = min(2*wait, 5*time.Second)
		} else {
			wait = 100 * time.Millisecond
		}
	}
	return nil
}

// outside splits the user records of an aggregate that landed on a shard
// it was not meant for: in are those the landing shard's consumer keeps,
// out those it will drop as outside its hash range. It lists the shards
// only when the landing shard is not known yet; Put refreshes the map once
// per answer otherwise.
func (p *Producer) outside(ctx context.Context, users []kpl.UserRecord, landed string) (in, out []kpl.UserRecord, err error) {
	hr, ok := p.ranges[landed]
	if !ok {
		if err := p.refresh(ctx); err != nil {
			return nil, nil, fmt.Errorf("refresh shard map of %s after a record landed on %s: %w", p.stream, landed, err)
		}
		if hr, ok = p.ranges[landed]; !ok {
			return nil, nil, fmt.Errorf("record landed on shard %s, not listed in %s", landed, p.stream)
		}
	}
	for _, u := range users {
		key := u.ExplicitHashKey
		if key == "" {
			key = kpl.PartitionKeyHash(u.PartitionKey)
		}
		if hr.Contains(key) {
			in = append(in, u)
		} else {
			out = append(out, u)
		}
	}
	return in, out, nil
}

// pack turns user records into Kinesis records: one each, or aggregates of
// up to p.aggregate records of one shard.
func (p *Producer) pack(recs []kpl.UserRecord) ([]entry, error) {
	if p.aggregate <= 1 {
		out := make([]entry, len(recs))
		for i, r := range recs {
			if len(r.Data)+len(r.PartitionKey) > kpl.MaxRecordSize {
				return nil, fmt.Errorf("record with partition key %q is larger than a Kinesis record allows", r.PartitionKey)
			}
			out[i] = entry{put: types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)}, users: recs[i : i+1]}
			if r.ExplicitHashKey != "" {
				out[i].put.ExplicitHashKey = aws.String(r.ExplicitHashKey)
			}
		}
		return out, nil
	}
	type group struct {
		shard string // predicted shard; "" when grouped by key
		recs  []kpl.UserRecord
	}
	var groups []*group
	index := map[string]*group{}
	for _, r := range recs {
		k, shard := r.PartitionKey+"\x00"+r.ExplicitHashKey, ""
		if !p.ByKey {
			shard = p.shards[p.shardFor(r)].id
			k = shard
		}
		g := index[k]
		if g == nil {
			g = &group{shard: shard}
			index[k] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
	}
	var out []entry
	agg := kpl.NewAggregator(0)
	for _, gr := range groups {
		g := gr.recs
		flush := func(users []kpl.UserRecord) error {
			pk, ehk := agg.PartitionKey(), agg.ExplicitHashKey()
			data, err := agg.Flush()
			if err != nil {
				return err
			}
			e := entry{put: types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(pk)}, users: users, shard: gr.shard}
			if ehk != "" {
				e.put.ExplicitHashKey = aws.String(ehk)
			}
			out = append(out, e)
			return nil
		}
		first := 0
		for i, r := range g {
			if agg.Len() < p.aggregate && agg.Add(r) {
				continue
			}
			if agg.Len() > 0 {
				if err := flush(g[first:i]); err != nil {
					return nil, err
				}
				first = i
				if agg.Add(r) {
					continue
				}
			}
			if len(r.Data)+len(r.PartitionKey) > kpl.MaxRecordSize {
				return nil, fmt.Errorf("record with partition key %q is larger than a Kinesis record allows", r.PartitionKey)
			}
			// Too big for an aggregate's framing, not for Kinesis: send it
			// plain, as the KPL does.
			e := entry{put: types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(r.PartitionKey)}, users: g[i : i+1], shard: gr.shard}
			if r.ExplicitHashKey != "" {
				e.put.ExplicitHashKey = aws.String(r.ExplicitHashKey)
			}
			out = append(out, e)
			first = i + 1
		}
		if agg.Len() > 0 {
			if err := flush(g[first:]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// isValidation reports a request Kinesis refuses as malformed.
func isValidation(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
