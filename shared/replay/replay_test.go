package replay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/replay"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

type got struct {
	data []string
	pos  []stream.Position
}

func readAll(t *testing.T, k replay.KinesisAPI, streamName, shard string, from replay.Start, until replay.Stop) (got, replay.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var g got
	res, err := replay.ReadShard(ctx, k, replay.Config{StreamName: streamName, ShardID: shard, From: from, Until: until, ReadInterval: -1, ChunkSize: 7},
		func(c replay.Chunk) error {
			for _, r := range c.Records {
				g.data = append(g.data, string(r.Data))
				g.pos = append(g.pos, r.Position())
			}
			return nil
		})
	if err != nil {
		t.Fatalf("ReadShard %s..%s: %v", from, until, err)
	}
	if res.Records != int64(len(g.data)) {
		t.Errorf("Result.Records = %d, handed %d", res.Records, len(g.data))
	}
	return g, res
}

// TestReadShardRanges: one shard holding plain records and KPL aggregates
// put in two rounds 1.2 s apart, read back with every kind of start and
// stop: what each range holds, exactly, in order.
func TestReadShardRanges(t *testing.T) {
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	ctx := context.Background()
	prod, err := produce.New(ctx, kc, name, 5) // aggregates of 5 user records
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	put := func(round int) {
		var recs []kpl.UserRecord
		for i := range 12 {
			d := fmt.Sprintf("r%d-%02d", round, i)
			recs = append(recs, kpl.UserRecord{PartitionKey: "k", Data: []byte(d)})
			want = append(want, d)
		}
		if err := prod.Put(ctx, recs); err != nil {
			t.Fatal(err)
		}
		d := fmt.Sprintf("r%d-plain", round)
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	put(0)
	time.Sleep(1200 * time.Millisecond) // the rounds' arrival times 1 s apart: not synchronisation
	between := time.Now()
	time.Sleep(1200 * time.Millisecond)
	put(1)
	const shard = "shardId-000000000000"
	k := replay.NewClient(kc, nil)

	all, res := readAll(t, k, name, shard, replay.FromTrimHorizon(), replay.UntilTime(time.Now()))
	if !slices.Equal(all.data, want) {
		t.Fatalf("TRIM_HORIZON..now = %q\nwant %q", all.data, want)
	}
	if res.Reached || res.Ended {
		t.Errorf("TRIM_HORIZON..now: Reached %v Ended %v, want the tip (both false)", res.Reached, res.Ended)
	}
	idx := func(d string) int { return slices.Index(all.data, d) }
	r1 := idx("r1-00")

	tests := []struct {
		name  string
		from  replay.Start
		until replay.Stop
		want  []string
	}{
		{"before the time", replay.FromTrimHorizon(), replay.UntilTime(between), all.data[:r1]},
		{"from the time", replay.FromTime(between), replay.UntilTime(time.Now()), all.data[r1:]},
		{"from a sub-sequence number", replay.FromPosition(all.pos[idx("r0-07")]), replay.UntilPosition(all.pos[idx("r1-03")]), all.data[idx("r0-07"):idx("r1-03")]},
		{"through an aggregate's sequence number", replay.FromSequence(all.pos[idx("r0-05")].Seq), replay.ThroughSequence(all.pos[idx("r1-06")].Seq), all.data[idx("r0-05"):idx("r1-10")]},
		{"one aggregate", replay.FromSequence(all.pos[idx("r1-05")].Seq), replay.ThroughSequence(all.pos[idx("r1-05")].Seq), all.data[idx("r1-05"):idx("r1-10")]},
		{"until a plain record", replay.FromPosition(all.pos[idx("r0-11")]), replay.UntilPosition(all.pos[idx("r0-plain")]), []string{"r0-11"}},
		{"empty", replay.FromPosition(all.pos[idx("r0-03")]), replay.UntilPosition(all.pos[idx("r0-03")]), nil},
	}
	for _, tt := range tests {
		g, res := readAll(t, k, name, shard, tt.from, tt.until)
		if !slices.Equal(g.data, tt.want) {
			t.Errorf("%s (%s..%s) = %q\nwant %q", tt.name, tt.from, tt.until, g.data, tt.want)
		}
		if tt.until.Kind != replay.StopBeforeTime && !res.Reached {
			t.Errorf("%s: Reached false, want the stop reached", tt.name)
		}
	}
}

// TestReadShardToShardEnd: a closed shard read to its end says so, with
// its children, and a sequence number not of the shard is a fatal read
// error.
func TestReadShardToShardEnd(t *testing.T) {
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	ctx := context.Background()
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &name, ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	k := replay.NewClient(kc, nil)
	var res replay.Result
	deadline := time.Now().Add(20 * time.Second)
	for { // the split takes a moment: until then the shard is open
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var err error
		res, err = replay.ReadShard(cctx, k, replay.Config{StreamName: name, ShardID: "shardId-000000000000", From: replay.FromTrimHorizon(), Until: replay.UntilShardEnd(), ReadInterval: -1},
			func(replay.Chunk) error { return nil })
		cancel()
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if !res.Ended || res.Records != 1 || len(res.Children) != 2 {
		t.Errorf("read to the end of a split shard: %+v, want Ended, 1 record, 2 children", res)
	}
	if err := replay.CheckSequence(ctx, k, name, "shardId-000000000000", res.First.Seq); err != nil {
		t.Errorf("CheckSequence of the shard's record: %v", err)
	}
	var nis *replay.NotInShardError
	for _, bad := range []struct{ shard, seq string }{{"shardId-000000000001", res.First.Seq}, {"shardId-000000000000", res.First.Seq[:len(res.First.Seq)-3] + "999"}} {
		if err := replay.CheckSequence(ctx, k, name, bad.shard, bad.seq); !errors.As(err, &nis) {
			t.Errorf("CheckSequence(%s, %s) = %v, want a NotInShardError", bad.shard, bad.seq, err)
		}
	}
}

// TestEachLineage: children start only after all their parents returned;
// the first error stops the rest and is returned.
func TestEachLineage(t *testing.T) {
	list := []shards.Shard{
		{ID: "c1", Parents: []string{"p"}}, {ID: "c2", Parents: []string{"p"}}, {ID: "p"},
		{ID: "m", Parents: []string{"c1", "c2"}}, {ID: "x"},
	}
	ordered, err := replay.Select(list, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var finished []string
	err = replay.Each(context.Background(), ordered, 2, func(ctx context.Context, s shards.Shard) error {
		mu.Lock()
		for _, p := range s.Parents {
			if !slices.Contains(finished, p) {
				t.Errorf("%s started before its parent %s finished", s.ID, p)
			}
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // work
		mu.Lock()
		finished = append(finished, s.ID)
		mu.Unlock()
		return nil
	})
	if err != nil || len(finished) != 5 {
		t.Fatalf("Each = %v, finished %v", err, finished)
	}
	boom := errors.New("boom")
	var ran []string
	err = replay.Each(context.Background(), ordered, 1, func(ctx context.Context, s shards.Shard) error {
		mu.Lock()
		ran = append(ran, s.ID)
		mu.Unlock()
		if s.ID == "p" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Each = %v, want boom", err)
	}
	if slices.Contains(ran, "c1") || slices.Contains(ran, "m") {
		t.Errorf("children of a failed shard ran: %v", ran)
	}
	if _, err := replay.Select(list, []string{"p", "nope"}); err == nil || err.Error() != "shard nope is not a shard of the stream (or is past its retention)" {
		t.Errorf("Select of an unknown shard = %v", err)
	}
	if sel, _ := replay.Select(list, []string{"m", "p"}); sel[0].ID != "p" || sel[1].ID != "m" {
		t.Errorf("Select(m, p) = %v, want p before m", sel)
	}
}

// TestLimiter: n records at a rate take n/rate, the first at once.
func TestLimiter(t *testing.T) {
	l := replay.NewLimiter(1000)
	start := time.Now()
	for range 5 {
		if err := l.Wait(context.Background(), 50); err != nil {
			t.Fatal(err)
		}
	}
	// 250 records at 1000/s: the 5th chunk may start after 200ms.
	if took := time.Since(start); took < 190*time.Millisecond || took > 2*time.Second {
		t.Errorf("5 chunks of 50 at 1000/s took %v, want about 200ms", took)
	}
	if replay.NewLimiter(0) != nil {
		t.Errorf("NewLimiter(0) is not nil (no cap)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 10000); err == nil {
		t.Errorf("Wait on an ended context returned nil")
	}
}
