package coordinator_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
)

// keyedProducer puts "key-k:n" records with per-key counters, aggregated
// per key, until stopped.
type keyedProducer struct {
	f    *fixture
	keys int
	mu   sync.Mutex
	ids  []string
	stop chan struct{}
	done chan error
}

func (f *fixture) keyedProducer(keys, perTick int) *keyedProducer {
	p := &keyedProducer{f: f, keys: keys, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		prod, err := produce.New(context.Background(), f.kinesis, f.stream, 10)
		if err != nil {
			p.done <- err
			return
		}
		prod.ByKey = true
		counters := make([]int, keys)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				p.done <- nil
				return
			default:
			}
			var recs []kpl.UserRecord
			var ids []string
			for j := 0; j < perTick; j++ {
				k := (i*perTick + j) % keys
				id := fmt.Sprintf("key-%d:%d", k, counters[k])
				counters[k]++
				recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprintf("key-%d", k), Data: []byte(id)})
				ids = append(ids, id)
			}
			if err := prod.Put(context.Background(), recs); err != nil {
				p.done <- err
				return
			}
			p.mu.Lock()
			p.ids = append(p.ids, ids...)
			p.mu.Unlock()
			time.Sleep(50 * time.Millisecond) // pacing
		}
	}()
	return p
}

func (p *keyedProducer) finish(t *testing.T) []string {
	t.Helper()
	close(p.stop)
	if err := <-p.done; err != nil {
		t.Fatalf("producer: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids
}

func (p *keyedProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

// openShards lists the stream's open shards.
func (f *fixture) openShards() []shards.Shard {
	f.t.Helper()
	list, err := shards.List(context.Background(), f.kinesis, f.stream)
	if err != nil {
		f.t.Fatal(err)
	}
	var open []shards.Shard
	for _, s := range list {
		if !s.Closed {
			open = append(open, s)
		}
	}
	return open
}

func (f *fixture) waitActive() {
	f.t.Helper()
	testwait.Until(f.t, 30*time.Second, "stream ACTIVE", func() bool {
		out, err := f.kinesis.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &f.stream})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
}

func mid(t *testing.T, s shards.Shard) string {
	t.Helper()
	lo, ok1 := new(big.Int).SetString(s.StartingHashKey, 10)
	hi, ok2 := new(big.Int).SetString(s.EndingHashKey, 10)
	if !ok1 || !ok2 {
		t.Fatalf("shard %s: bad hash range", s.ID)
	}
	return new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1).String()
}

// TestReshardWhileConsuming: split, merge and UpdateShardCount while a
// worker reads and a producer writes: every record is delivered exactly
// once, each key's records in order across the reshards, children only
// after their parents ended, and ended leases cleaned up once their
// children started.
func TestReshardWhileConsuming(t *testing.T) {
	f := newFixture(t, 2)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.ShardSyncInterval = time.Second })
	p := f.keyedProducer(20, 20)
	ctx := context.Background()
	step := func(what string, fn func() error) {
		n := p.count()
		testwait.Until(t, time.Minute, "records before "+what, func() bool { return p.count() >= n+200 && c.count() >= n })
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		f.waitActive()
	}
	step("split", func() error {
		s := f.openShards()[0]
		_, err := f.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &f.stream, ShardToSplit: &s.ID, NewStartingHashKey: aws.String(mid(t, s))})
		return err
	})
	step("merge", func() error {
		open := f.openShards()
		for i := range open {
			for j := range open {
				a, b := open[i], open[j]
				ae, _ := new(big.Int).SetString(a.EndingHashKey, 10)
				bs, _ := new(big.Int).SetString(b.StartingHashKey, 10)
				if new(big.Int).Add(ae, big.NewInt(1)).Cmp(bs) == 0 {
					_, err := f.kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &f.stream, ShardToMerge: &a.ID, AdjacentShardToMerge: &b.ID})
					return err
				}
			}
		}
		return fmt.Errorf("no adjacent open shards in %v", open)
	})
	step("UpdateShardCount", func() error {
		_, err := f.kinesis.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: &f.stream, TargetShardCount: aws.Int32(4), ScalingType: ktypes.ScalingTypeUniformScaling})
		return err
	})
	n := p.count()
	testwait.Until(t, time.Minute, "records after the reshards", func() bool { return p.count() >= n+200 })
	want := p.finish(t)
	testwait.Until(t, 2*time.Minute, fmt.Sprintf("all %d records", len(want)), func() bool { return c.count() >= len(want) })
	recs := c.snapshot()
	assertIDs(t, recs, want)
	checkOrder(t, recs) // per shard and per key, across the reshards

	// Every shard that ended was read to SHARD_END; a parent's records all
	// came before any of its children's.
	list, err := shards.List(ctx, f.kinesis, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	first, last := map[string]int{}, map[string]int{}
	for i, g := range recs {
		if _, ok := first[g.shard]; !ok {
			first[g.shard] = i
		}
		last[g.shard] = i
	}
	closed := 0
	for _, s := range list {
		if s.Closed {
			closed++
		}
		for _, parent := range s.Parents {
			if _, ok := first[s.ID]; !ok {
				continue
			}
			if l, ok := last[parent]; ok && l > first[s.ID] {
				t.Errorf("child %s delivered (at %d) before its parent %s ended (last at %d)", s.ID, first[s.ID], parent, l)
			}
		}
	}
	if closed < 3 {
		t.Fatalf("%d closed shards after split, merge and UpdateShardCount, want at least 3", closed)
	}
	// Ended leases are cleaned up once their children have started; the
	// ones left are ended (SHARD_END) or open shards' leases.
	testwait.Until(t, 30*time.Second, "ended leases cleaned up", func() bool {
		ended := 0
		for _, l := range f.leases() {
			if l.Checkpoint.Seq == stream.ShardEnd {
				ended++
			}
		}
		return ended < closed
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
