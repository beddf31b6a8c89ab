package produce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

const testStream = "test-stream"

// maxHashKey is 2^128-1, the top of Kinesis's hash key space.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// fakeShard is one shard of fakeKinesis. Closed shards are kept, as Kinesis
// keeps them until their retention ends, so that records put on them can be
// read back with their hash range.
type fakeShard struct {
	id         string
	start, end *big.Int
	closed     bool
}

func (s *fakeShard) hashRange() kpl.HashRange {
	return kpl.HashRange{Start: s.start, End: s.end}
}

func (s *fakeShard) contains(k *big.Int) bool {
	return s.start.Cmp(k) <= 0 && k.Cmp(s.end) <= 0
}

// landing is one Kinesis record the fake accepted, and where.
type landing struct {
	shard string
	ehk   string
	rec   types.Record
}

// fakeKinesis is an in-process stand-in for the two Kinesis calls a
// Producer makes. It routes each PutRecords entry by its ExplicitHashKey or
// the MD5 of its partition key to the open shard whose range holds it,
// assigns increasing sequence numbers, enforces Kinesis's limits (500
// entries and 5 MiB per call, 1 MiB per record), and can throttle chosen
// entries once, fail whole calls, and reshard between calls.
type fakeKinesis struct {
	t      *testing.T
	mu     sync.Mutex
	stream string
	shards []*fakeShard
	nextID int
	seq    int
	// pageSize is how many shards one ListShards page holds (0: all).
	pageSize int

	// throttle chooses entries to fail with
	// ProvisionedThroughputExceededException the first time they are put.
	throttle  func(types.PutRecordsRequestEntry) bool
	throttled map[string]bool
	// putErrs and listErrs are returned, first to last, by the next calls.
	putErrs  []error
	listErrs []error
	// afterPut, if set, runs after each PutRecords call (0-based) has been
	// answered, for resharding between calls.
	afterPut func(call int)
	// abort ends the test's context when the producer breaks a Kinesis
	// limit, so that Put returns at once instead of retrying forever.
	abort context.CancelCauseFunc

	calls      [][]types.PutRecordsRequestEntry // every PutRecords call's entries
	accepted   []landing                        // in the order Kinesis took them
	failed     int                              // entries answered with an ErrorCode
	violations int                              // calls rejected as invalid
	listCalls  int
}

// newFake returns a fake stream of n shards that split the hash key space
// evenly.
func newFake(t *testing.T, n int) *fakeKinesis {
	f := &fakeKinesis{t: t, stream: testStream, throttled: map[string]bool{}}
	width := new(big.Int).Div(new(big.Int).Add(maxHashKey, big.NewInt(1)), big.NewInt(int64(n)))
	for i := range n {
		start := new(big.Int).Mul(width, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, width), big.NewInt(1))
		if i == n-1 {
			end = new(big.Int).Set(maxHashKey)
		}
		f.addShard(start, end)
	}
	return f
}

func (f *fakeKinesis) addShard(start, end *big.Int) *fakeShard {
	s := &fakeShard{id: fmt.Sprintf("shardId-%012d", f.nextID), start: start, end: end}
	f.nextID++
	f.shards = append(f.shards, s)
	return s
}

func (f *fakeKinesis) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	f.t.Fatalf("fake kinesis: no shard %s", id)
	return nil
}

func (f *fakeKinesis) open() []*fakeShard {
	var out []*fakeShard
	for _, s := range f.shards {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

// split closes the open shard id and opens two children that share its
// range at the middle.
func (f *fakeKinesis) split(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(id)
	if s.closed {
		f.t.Fatalf("fake kinesis: split of closed shard %s", id)
	}
	mid := new(big.Int).Rsh(new(big.Int).Add(s.start, s.end), 1)
	s.closed = true
	f.addShard(s.start, mid)
	f.addShard(new(big.Int).Add(mid, big.NewInt(1)), s.end)
}

// merge closes the adjacent open shards a and b (a below b) and opens one
// child over both ranges.
func (f *fakeKinesis) merge(a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sa, sb := f.shard(a), f.shard(b)
	if sa.closed || sb.closed || new(big.Int).Add(sa.end, big.NewInt(1)).Cmp(sb.start) != 0 {
		f.t.Fatalf("fake kinesis: cannot merge %s and %s", a, b)
	}
	sa.closed, sb.closed = true, true
	f.addShard(sa.start, sb.end)
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	if len(f.listErrs) > 0 {
		err := f.listErrs[0]
		f.listErrs = f.listErrs[1:]
		return nil, err
	}
	from := 0
	switch {
	case in.NextToken != nil && in.StreamName != nil:
		return nil, &types.InvalidArgumentException{Message: aws.String("NextToken and StreamName cannot be provided together")}
	case in.NextToken != nil:
		n, err := strconv.Atoi(strings.TrimPrefix(*in.NextToken, "page:"))
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("bad NextToken")}
		}
		from = n
	case aws.ToString(in.StreamName) != f.stream:
		return nil, &types.ResourceNotFoundException{Message: aws.String("Stream " + aws.ToString(in.StreamName) + " not found")}
	}
	to := len(f.shards)
	if f.pageSize > 0 && from+f.pageSize < to {
		to = from + f.pageSize
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards[from:to] {
		sh := types.Shard{
			ShardId: aws.String(s.id),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(s.start.String()),
				EndingHashKey:   aws.String(s.end.String()),
			},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String(strconv.Itoa(f.seq))
		}
		out.Shards = append(out.Shards, sh)
	}
	if to < len(f.shards) {
		out.NextToken = aws.String(fmt.Sprintf("page:%d", to))
	}
	return out, nil
}

// violation reports a request Kinesis would reject as invalid, fails the
// test and ends its context.
func (f *fakeKinesis) violation(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if f.violations++; f.violations == 1 {
		f.t.Errorf("fake kinesis: PutRecords call %d: %s", len(f.calls)-1, msg)
	}
	err := &types.ValidationException{Message: aws.String(msg)}
	if f.abort != nil {
		f.abort(err)
	}
	return err
}

func entryKey(e types.PutRecordsRequestEntry) string {
	return aws.ToString(e.PartitionKey) + "\x00" + aws.ToString(e.ExplicitHashKey) + "\x00" + string(e.Data)
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, append([]types.PutRecordsRequestEntry(nil), in.Records...))
	out, err := f.put(in)
	f.mu.Unlock()
	if f.afterPut != nil {
		f.afterPut(call)
	}
	return out, err
}

func (f *fakeKinesis) put(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	if aws.ToString(in.StreamName) != f.stream {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Stream " + aws.ToString(in.StreamName) + " not found")}
	}
	if len(f.putErrs) > 0 {
		err := f.putErrs[0]
		f.putErrs = f.putErrs[1:]
		return nil, err
	}
	if n := len(in.Records); n == 0 || n > 500 {
		return nil, f.violation("%d entries, want 1 to 500", n)
	}
	total := 0
	keys := make([]*big.Int, len(in.Records))
	for i, e := range in.Records {
		pk := aws.ToString(e.PartitionKey)
		if len(pk) < 1 || len(pk) > 256 {
			return nil, f.violation("entry %d: partition key of %d bytes", i, len(pk))
		}
		size := len(e.Data) + len(pk)
		if size > kpl.MaxRecordSize {
			return nil, f.violation("entry %d: %d bytes of data and partition key, over 1 MiB", i, size)
		}
		total += size
		hk := kpl.PartitionKeyHash(pk)
		if e.ExplicitHashKey != nil {
			hk = *e.ExplicitHashKey
		}
		k, ok := new(big.Int).SetString(hk, 10)
		if !ok || k.Sign() < 0 || k.Cmp(maxHashKey) > 0 {
			return nil, f.violation("entry %d: explicit hash key %q", i, hk)
		}
		keys[i] = k
	}
	if total > 5<<20 {
		return nil, f.violation("%d bytes in one call, over 5 MiB", total)
	}
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for i, e := range in.Records {
		if f.throttle != nil && !f.throttled[entryKey(e)] && f.throttle(e) {
			f.throttled[entryKey(e)] = true
			f.failed++
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			out.Records[i] = types.PutRecordsResultEntry{
				ErrorCode:    aws.String("ProvisionedThroughputExceededException"),
				ErrorMessage: aws.String("Rate exceeded for shard"),
			}
			continue
		}
		var to *fakeShard
		for _, s := range f.open() {
			if s.contains(keys[i]) {
				to = s
				break
			}
		}
		f.seq++
		seq := fmt.Sprintf("%056d", f.seq)
		f.accepted = append(f.accepted, landing{
			shard: to.id,
			ehk:   aws.ToString(e.ExplicitHashKey),
			rec:   types.Record{Data: e.Data, PartitionKey: e.PartitionKey, SequenceNumber: aws.String(seq)},
		})
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(to.id), SequenceNumber: aws.String(seq)}
	}
	return out, nil
}

// deliver de-aggregates every record the fake accepted, in the order it
// accepted them, as a consumer of the record's shard would: with that
// shard's hash-range filter when filter is set.
func (f *fakeKinesis) deliver(filter bool) ([]stream.Record, kpl.Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stream.Record
	var total kpl.Stats
	for _, l := range f.accepted {
		var hr kpl.HashRange
		if filter {
			hr = f.shard(l.shard).hashRange()
		}
		var st kpl.Stats
		out, st = kpl.Deaggregate(out, l.shard, &l.rec, hr)
		if st.Aggregates == 0 {
			// A plain record: Kinesis gives a consumer no explicit hash
			// key, but the test compares records with theirs.
			out[len(out)-1].ExplicitHashKey = l.ehk
		}
		total.Add(st)
	}
	return out, total
}

// testContext returns a context for one test that the fake ends when the
// producer breaks a Kinesis limit, and that times out rather than letting a
// producer that retries forever hang the test.
func testContext(t *testing.T, f *fakeKinesis, timeout time.Duration) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, stop := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		stop()
		cancel(nil)
	})
	f.abort = cancel
	return ctx
}

// mode is how a Producer is set up.
type mode struct {
	name      string
	aggregate int
	byKey     bool
}

var (
	plain      = mode{"no aggregation", 0, false}
	plainOne   = mode{"aggregate 1", 1, false}
	byShard    = mode{"by shard", 10, false}
	byKeyMode  = mode{"by key", 10, true}
	everyMode  = []mode{plain, plainOne, byShard, byKeyMode}
	aggregated = []mode{byShard, byKeyMode}
)

func newProducer(t *testing.T, ctx context.Context, f *fakeKinesis, m mode) *Producer {
	t.Helper()
	p, err := New(ctx, f, testStream, m.aggregate)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.ByKey = m.byKey
	return p
}

// userRecords returns n records over the given number of partition keys,
// each with data of its own. If ehkEvery > 0, every ehkEvery-th record has
// an explicit hash key instead (placed somewhere else than its partition
// key's MD5).
func userRecords(n, keys, ehkEvery int) []kpl.UserRecord {
	recs := make([]kpl.UserRecord, n)
	for i := range recs {
		k := fmt.Sprintf("key-%d", i%keys)
		recs[i] = kpl.UserRecord{PartitionKey: k, Data: fmt.Appendf(nil, "%s#%d", k, i)}
		if ehkEvery > 0 && i%ehkEvery == 0 {
			recs[i].ExplicitHashKey = kpl.PartitionKeyHash(fmt.Sprintf("explicit-%d", i%keys))
		}
	}
	return recs
}

// orderKey is what a consumer orders by: the partition key, and the
// explicit hash key when there is one.
func orderKey(pk, ehk string) string { return pk + "\x00" + ehk }

func userKey(pk, ehk string, data []byte) string {
	return orderKey(pk, ehk) + "\x00" + string(data)
}

func hashKeyOf(pk, ehk string) *big.Int {
	if ehk == "" {
		ehk = kpl.PartitionKeyHash(pk)
	}
	k, _ := new(big.Int).SetString(ehk, 10)
	return k
}

// checkExactlyOnce checks that got holds every record of want exactly once
// and nothing else.
func checkExactlyOnce(t *testing.T, got []stream.Record, want []kpl.UserRecord) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[userKey(r.PartitionKey, r.ExplicitHashKey, r.Data)]++
	}
	lost, dup := 0, 0
	for _, r := range want {
		k := userKey(r.PartitionKey, r.ExplicitHashKey, r.Data)
		switch c := count[k]; {
		case c == 0:
			if lost++; lost <= 5 {
				t.Errorf("record %q (key %q, explicit hash key %q) lost", r.Data, r.PartitionKey, r.ExplicitHashKey)
			}
		case c > 1:
			if dup++; dup <= 5 {
				t.Errorf("record %q (key %q) delivered %d times, want once", r.Data, r.PartitionKey, c)
			}
		}
		delete(count, k)
	}
	if lost+dup > 0 {
		t.Errorf("%d of %d records lost, %d duplicated", lost, len(want), dup)
	}
	for k, c := range count {
		t.Errorf("delivered %d times a record never put: %q", c, k)
	}
}

// checkOrderPerKey checks that, for every key, got holds that key's records
// in the order of want.
func checkOrderPerKey(t *testing.T, got []stream.Record, want []kpl.UserRecord) {
	t.Helper()
	gotByKey, wantByKey := map[string][]string{}, map[string][]string{}
	for _, r := range got {
		k := orderKey(r.PartitionKey, r.ExplicitHashKey)
		gotByKey[k] = append(gotByKey[k], string(r.Data))
	}
	for _, r := range want {
		k := orderKey(r.PartitionKey, r.ExplicitHashKey)
		wantByKey[k] = append(wantByKey[k], string(r.Data))
	}
	for k, w := range wantByKey {
		if g := gotByKey[k]; strings.Join(g, ",") != strings.Join(w, ",") {
			t.Errorf("key %q: got records in order %q, want %q", k, g, w)
		}
	}
}

// checkStats checks that the producer's counters add up with what the fake
// saw: every user record accepted once, every accepted Kinesis record
// counted, and one retry per throttled entry plus one per user record sent
// again because it landed outside its landing shard's range.
func checkStats(t *testing.T, p *Producer, f *fakeKinesis, users int) {
	t.Helper()
	_, st := f.deliver(true)
	if p.UserRecords != int64(users) {
		t.Errorf("UserRecords: got %d, want %d", p.UserRecords, users)
	}
	if p.KinesisRecords != int64(len(f.accepted)) {
		t.Errorf("KinesisRecords: got %d, want %d (records the fake accepted)", p.KinesisRecords, len(f.accepted))
	}
	if want := int64(f.failed + st.DroppedOutOfRange); p.Retries != want {
		t.Errorf("Retries: got %d, want %d (%d throttled entries + %d user records outside their landing shard)",
			p.Retries, want, f.failed, st.DroppedOutOfRange)
	}
}

func TestPutEmpty(t *testing.T) {
	for _, m := range everyMode {
		t.Run(m.name, func(t *testing.T) {
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, m)
			if err := p.Put(ctx, nil); err != nil {
				t.Fatalf("Put(nil): %v", err)
			}
			if len(f.calls) != 0 {
				t.Errorf("got %d PutRecords calls, want 0", len(f.calls))
			}
			checkStats(t, p, f, 0)
		})
	}
}

func TestPutNoAggregation(t *testing.T) {
	tests := []struct {
		name      string
		aggregate int
		byKey     bool
		recs      []kpl.UserRecord
	}{
		{"aggregate 0", 0, false, userRecords(50, 7, 0)},
		{"aggregate 1", 1, false, userRecords(50, 7, 0)},
		{"negative aggregate", -3, false, userRecords(10, 3, 0)},
		{"explicit hash keys kept", 0, false, userRecords(40, 5, 3)},
		{"ByKey ignored", 1, true, userRecords(20, 4, 0)},
		{"empty data", 0, false, []kpl.UserRecord{{PartitionKey: "k", Data: nil}, {PartitionKey: "k2", Data: []byte{}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, 4)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, mode{aggregate: tc.aggregate, byKey: tc.byKey})
			if err := p.Put(ctx, tc.recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if f.listCalls != 0 {
				t.Errorf("got %d ListShards calls, want 0 without aggregation", f.listCalls)
			}
			if len(f.accepted) != len(tc.recs) {
				t.Fatalf("fake accepted %d Kinesis records, want %d, one per user record", len(f.accepted), len(tc.recs))
			}
			for i, l := range f.accepted {
				r := tc.recs[i]
				if pk := aws.ToString(l.rec.PartitionKey); pk != r.PartitionKey || l.ehk != r.ExplicitHashKey || !bytes.Equal(l.rec.Data, r.Data) {
					t.Errorf("Kinesis record %d: got key %q, explicit hash key %q, data %q; want %q, %q, %q",
						i, pk, l.ehk, l.rec.Data, r.PartitionKey, r.ExplicitHashKey, r.Data)
				}
				if want := hashKeyOf(r.PartitionKey, r.ExplicitHashKey); !f.shard(l.shard).contains(want) {
					t.Errorf("Kinesis record %d landed on %s, outside its hash key's shard", i, l.shard)
				}
			}
			got, st := f.deliver(true)
			if st.Aggregates != 0 {
				t.Errorf("got %d aggregates, want none", st.Aggregates)
			}
			checkExactlyOnce(t, got, tc.recs)
			checkStats(t, p, f, len(tc.recs))
		})
	}
}

func TestPutAggregatesByShard(t *testing.T) {
	big100k := make([]kpl.UserRecord, 60)
	for i := range big100k {
		big100k[i] = kpl.UserRecord{PartitionKey: fmt.Sprintf("big-%d", i%5), Data: bytes.Repeat([]byte{byte('a' + i%26)}, 100<<10)}
		big100k[i].Data = fmt.Appendf(big100k[i].Data, "#%d", i)
	}
	tests := []struct {
		name      string
		shards    int
		aggregate int
		recs      []kpl.UserRecord
		dense     bool // small records: aggregates are full but for each shard's last
	}{
		{"one shard", 1, 10, userRecords(95, 13, 0), true},
		{"four shards", 4, 10, userRecords(400, 37, 0), true},
		{"pairs", 3, 2, userRecords(101, 11, 0), true},
		{"explicit hash keys", 4, 8, userRecords(300, 29, 4), true},
		{"fewer records than aggregate", 8, 1000, userRecords(30, 30, 0), true},
		{"more shards than keys", 16, 5, userRecords(40, 2, 0), true},
		{"large records: 1 MiB and 5 MiB limits", 2, 100, big100k, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.shards)
			f.pageSize = 3
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, mode{aggregate: tc.aggregate})
			if err := p.Put(ctx, tc.recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			perShard := map[string]int{}
			for _, r := range tc.recs {
				k := hashKeyOf(r.PartitionKey, r.ExplicitHashKey)
				for _, s := range f.open() {
					if s.contains(k) {
						perShard[s.id]++
					}
				}
			}
			wantEntries := 0
			for _, n := range perShard {
				wantEntries += (n + tc.aggregate - 1) / tc.aggregate
			}
			if tc.dense && len(f.accepted) != wantEntries {
				t.Errorf("got %d aggregates, want %d (full ones of %d records per shard)", len(f.accepted), wantEntries, tc.aggregate)
			}
			for i, l := range f.accepted {
				users, st := kpl.Deaggregate(nil, l.shard, &l.rec, kpl.HashRange{})
				if st.Aggregates != 1 {
					t.Errorf("Kinesis record %d is not an aggregate: %+v", i, st)
					continue
				}
				if len(users) > tc.aggregate {
					t.Errorf("Kinesis record %d: got %d user records, want at most %d", i, len(users), tc.aggregate)
				}
				for _, u := range users {
					if !f.shard(l.shard).contains(hashKeyOf(u.PartitionKey, u.ExplicitHashKey)) {
						t.Errorf("Kinesis record %d landed on %s but holds %q (key %q) of another shard", i, l.shard, u.Data, u.PartitionKey)
					}
				}
			}
			got, st := f.deliver(true)
			if st.DroppedOutOfRange != 0 {
				t.Errorf("consumers dropped %d user records as outside their shard, want 0", st.DroppedOutOfRange)
			}
			unfiltered, _ := f.deliver(false)
			checkExactlyOnce(t, unfiltered, tc.recs)
			checkOrderPerKey(t, got, tc.recs)
			checkStats(t, p, f, len(tc.recs))
			if f.listCalls == 0 {
				t.Errorf("no ListShards call: the producer cannot know the shards")
			}
		})
	}
}

func TestPutByKey(t *testing.T) {
	tests := []struct {
		name      string
		shards    int
		aggregate int
		recs      []kpl.UserRecord
	}{
		{"one shard", 1, 10, userRecords(95, 13, 0)},
		{"four shards", 4, 10, userRecords(400, 37, 0)},
		{"one key", 3, 7, userRecords(50, 1, 0)},
		{"every key once", 2, 5, userRecords(30, 30, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.shards)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, mode{aggregate: tc.aggregate, byKey: true})
			if err := p.Put(ctx, tc.recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			perKey := map[string]int{}
			for _, r := range tc.recs {
				perKey[r.PartitionKey]++
			}
			wantEntries := 0
			for _, n := range perKey {
				wantEntries += (n + tc.aggregate - 1) / tc.aggregate
			}
			if len(f.accepted) != wantEntries {
				t.Errorf("got %d aggregates, want %d (full ones of %d records per key)", len(f.accepted), wantEntries, tc.aggregate)
			}
			for i, l := range f.accepted {
				users, _ := kpl.Deaggregate(nil, l.shard, &l.rec, kpl.HashRange{})
				if len(users) > tc.aggregate {
					t.Errorf("Kinesis record %d: got %d user records, want at most %d", i, len(users), tc.aggregate)
				}
				for _, u := range users {
					if u.PartitionKey != aws.ToString(l.rec.PartitionKey) {
						t.Errorf("Kinesis record %d under key %q holds a record of key %q", i, aws.ToString(l.rec.PartitionKey), u.PartitionKey)
					}
				}
			}
			got, st := f.deliver(true)
			if st.DroppedOutOfRange != 0 {
				t.Errorf("consumers dropped %d user records as outside their shard, want 0", st.DroppedOutOfRange)
			}
			checkExactlyOnce(t, got, tc.recs)
			checkOrderPerKey(t, got, tc.recs)
			checkStats(t, p, f, len(tc.recs))
		})
	}
}

// TestPutByKeyExplicitHashKeys puts records of one partition key whose
// explicit hash keys place them on different shards. An aggregate lands by
// its first record's explicit hash key, so a ByKey aggregate must not mix
// them, or the other shard's records are dropped by the landing shard's
// consumer.
func TestPutByKeyExplicitHashKeys(t *testing.T) {
	f := newFake(t, 2)
	ctx := testContext(t, f, 5*time.Second)
	p := newProducer(t, ctx, f, byKeyMode)
	recs := []kpl.UserRecord{
		{PartitionKey: "k", ExplicitHashKey: "0", Data: []byte("first shard")},
		{PartitionKey: "k", ExplicitHashKey: maxHashKey.String(), Data: []byte("second shard")},
		{PartitionKey: "k", Data: []byte("by key hash")},
	}
	if err := p.Put(ctx, recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, st := f.deliver(true)
	if st.DroppedOutOfRange != 0 {
		t.Errorf("consumers dropped %d user records as outside their shard, want 0", st.DroppedOutOfRange)
	}
	checkExactlyOnce(t, got, recs)
}

func TestPutRetriesThrottled(t *testing.T) {
	tests := []struct {
		name     string
		mode     mode
		recs     []kpl.UserRecord
		throttle func(i int, e types.PutRecordsRequestEntry) bool // i: place in the call
		// ordered: every key's records stay in order. A throttled entry
		// goes again after the rest of its call, so only when all of a
		// key's entries are throttled together, or none.
		ordered bool
	}{
		{"no aggregation, every third", plain, userRecords(60, 9, 0), func(i int, _ types.PutRecordsRequestEntry) bool { return i%3 == 1 }, false},
		{"no aggregation, all", plain, userRecords(20, 4, 0), func(int, types.PutRecordsRequestEntry) bool { return true }, true},
		{"no aggregation, last", plainOne, userRecords(20, 4, 0), func(i int, _ types.PutRecordsRequestEntry) bool { return i == 19 }, true},
		{"by shard, every other", byShard, userRecords(300, 31, 0), func(i int, _ types.PutRecordsRequestEntry) bool { return i%2 == 0 }, false},
		{"by shard, all", byShard, userRecords(100, 17, 5), func(int, types.PutRecordsRequestEntry) bool { return true }, true},
		{"by key, first", byKeyMode, userRecords(100, 10, 0), func(i int, _ types.PutRecordsRequestEntry) bool { return i == 0 }, false},
		{"by key, one key", byKeyMode, userRecords(200, 20, 0), func(_ int, e types.PutRecordsRequestEntry) bool {
			return aws.ToString(e.PartitionKey) == "key-3"
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, 3)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, tc.mode)
			// Only the first call throttles, so one back-off covers the test.
			f.throttle = func(e types.PutRecordsRequestEntry) bool {
				if len(f.calls) != 1 {
					return false
				}
				for i, c := range f.calls[0] {
					if entryKey(c) == entryKey(e) {
						return tc.throttle(i, e)
					}
				}
				return false
			}
			if err := p.Put(ctx, tc.recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if f.failed == 0 {
				t.Fatalf("the fake throttled nothing: the test tests nothing")
			}
			if len(f.calls) < 2 {
				t.Errorf("got %d PutRecords calls, want the throttled entries sent again", len(f.calls))
			}
			got, st := f.deliver(true)
			if st.DroppedOutOfRange != 0 {
				t.Errorf("consumers dropped %d user records as outside their shard, want 0", st.DroppedOutOfRange)
			}
			checkExactlyOnce(t, got, tc.recs)
			if tc.ordered {
				checkOrderPerKey(t, got, tc.recs)
			}
			checkStats(t, p, f, len(tc.recs))
		})
	}
}

func TestPutRetriesFailedCall(t *testing.T) {
	for _, m := range everyMode {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, m)
			f.putErrs = []error{&types.InternalFailureException{Message: aws.String("internal failure")}}
			recs := userRecords(30, 5, 0)
			if err := p.Put(ctx, recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if len(f.calls) != 2 {
				t.Errorf("got %d PutRecords calls, want 2: one failed, one sent again", len(f.calls))
			}
			got, _ := f.deliver(true)
			checkExactlyOnce(t, got, recs)
			checkOrderPerKey(t, got, recs)
			checkStats(t, p, f, len(recs))
		})
	}
}

func TestPutCallLimits(t *testing.T) {
	big := func(n, size int) []kpl.UserRecord {
		recs := make([]kpl.UserRecord, n)
		for i := range recs {
			recs[i] = kpl.UserRecord{PartitionKey: fmt.Sprintf("key-%d", i), Data: bytes.Repeat([]byte{'x'}, size)}
			recs[i].Data = fmt.Appendf(recs[i].Data[:size-8], "%08d", i)
		}
		return recs
	}
	tests := []struct {
		name      string
		mode      mode
		recs      []kpl.UserRecord
		throttle  bool
		wantCalls []int // entries per call, nil: not checked
	}{
		{"1234 plain records", plain, userRecords(1234, 50, 0), false, []int{500, 500, 234}},
		{"exactly 500", plain, userRecords(500, 50, 0), false, []int{500}},
		{"501", plain, userRecords(501, 50, 0), false, []int{500, 1}},
		{"throttled entries first, still 500", plain, userRecords(1100, 50, 0), true, nil},
		{"aggregates of 2", mode{"pairs", 2, false}, userRecords(1500, 300, 0), false, nil},
		{"aggregates of 2 throttled", mode{"pairs", 2, false}, userRecords(1500, 300, 0), true, nil},
		{"by key, aggregates of 2", mode{"pairs by key", 2, true}, userRecords(1500, 300, 0), false, nil},
		{"5 MiB: plain records of 900 KiB", plain, big(20, 900<<10), false, []int{5, 5, 5, 5}},
		{"5 MiB: plain records of 1 MiB", plain, big(12, kpl.MaxRecordSize-16), false, []int{5, 5, 2}},
		{"5 MiB: aggregates", byShard, big(40, 300<<10), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, 4)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, tc.mode)
			if tc.throttle {
				f.throttle = func(e types.PutRecordsRequestEntry) bool {
					return len(f.calls) == 1 && len(e.Data)%3 == 0
				}
			}
			if err := p.Put(ctx, tc.recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			var sizes []int
			for i, c := range f.calls {
				sizes = append(sizes, len(c))
				if len(c) > 500 {
					t.Errorf("call %d: %d entries, want at most 500", i, len(c))
				}
			}
			if tc.wantCalls != nil && fmt.Sprint(sizes) != fmt.Sprint(tc.wantCalls) {
				t.Errorf("entries per call: got %v, want %v", sizes, tc.wantCalls)
			}
			if tc.throttle && f.failed == 0 {
				t.Errorf("the fake throttled nothing: the test tests nothing")
			}
			got, _ := f.deliver(true)
			checkExactlyOnce(t, got, tc.recs)
			checkStats(t, p, f, len(tc.recs))
		})
	}
}

// TestPutStaleShardMap reshards the stream after New: the producer's map is
// stale, aggregates land on shards other than the predicted ones, and the
// user records a consumer of the landing shard would drop must be sent
// again, and only those.
func TestPutStaleShardMap(t *testing.T) {
	tests := []struct {
		name          string
		shards        int
		mode          mode
		reshard       func(f *fakeKinesis)
		throttle      bool
		wantMisplaced bool // some user records land outside their shard
	}{
		{"split one of one", 1, byShard, func(f *fakeKinesis) { f.split("shardId-000000000000") }, false, true},
		{"split one of two", 2, byShard, func(f *fakeKinesis) { f.split("shardId-000000000001") }, false, true},
		{"split both of two", 2, byShard, func(f *fakeKinesis) {
			f.split("shardId-000000000000")
			f.split("shardId-000000000001")
		}, false, true},
		{"split twice", 1, byShard, func(f *fakeKinesis) {
			f.split("shardId-000000000000")
			f.split("shardId-000000000001")
		}, false, true},
		{"split, aggregates of 3", 1, mode{"triples", 3, false}, func(f *fakeKinesis) { f.split("shardId-000000000000") }, false, true},
		{"split and throttled", 2, byShard, func(f *fakeKinesis) { f.split("shardId-000000000000") }, true, true},
		{"merge", 2, byShard, func(f *fakeKinesis) { f.merge("shardId-000000000000", "shardId-000000000001") }, false, false},
		{"by key: split", 1, byKeyMode, func(f *fakeKinesis) { f.split("shardId-000000000000") }, false, false},
		{"by key: split twice", 2, byKeyMode, func(f *fakeKinesis) {
			f.split("shardId-000000000000")
			f.split("shardId-000000000002")
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.shards)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, tc.mode)
			lists := f.listCalls
			tc.reshard(f)
			if tc.throttle {
				f.throttle = func(e types.PutRecordsRequestEntry) bool { return len(f.calls) == 1 && len(e.Data)%2 == 0 }
			}
			ehkEvery := 9
			if tc.mode.byKey {
				ehkEvery = 0 // see TestPutByKeyExplicitHashKeys
			}
			recs := userRecords(400, 53, ehkEvery)
			if err := p.Put(ctx, recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, st := f.deliver(true)
			if tc.wantMisplaced && st.DroppedOutOfRange == 0 {
				t.Fatalf("no user record landed outside its shard: the test tests nothing")
			}
			if !tc.mode.byKey && f.listCalls == lists {
				t.Errorf("aggregates landed on other shards than predicted, but the producer did not list the shards again")
			}
			if !tc.wantMisplaced && st.DroppedOutOfRange != 0 {
				t.Errorf("consumers dropped %d user records as outside their shard, want 0", st.DroppedOutOfRange)
			}
			if tc.throttle && f.failed == 0 {
				t.Errorf("the fake throttled nothing: the test tests nothing")
			}
			// Every record exactly once after each shard's filter: the
			// dropped ones were sent again, and no record that was kept
			// was sent twice.
			checkExactlyOnce(t, got, recs)
			if tc.mode.byKey {
				checkOrderPerKey(t, got, recs)
			}
			checkStats(t, p, f, len(recs))

			// The map is fresh now: a second Put lands every aggregate on
			// its predicted shard, with no refresh and nothing sent again.
			lists = f.listCalls
			accepted, retries := len(f.accepted), p.Retries
			more := userRecords(200, 41, 0)
			for i := range more {
				more[i].Data = append([]byte("second put "), more[i].Data...)
			}
			if err := p.Put(ctx, more); err != nil {
				t.Fatalf("second Put: %v", err)
			}
			if f.listCalls != lists {
				t.Errorf("second Put: %d ListShards calls, want none", f.listCalls-lists)
			}
			if p.Retries != retries {
				t.Errorf("second Put: %d retries, want none", p.Retries-retries)
			}
			var second []stream.Record
			for _, l := range f.accepted[accepted:] {
				var st kpl.Stats
				second, st = kpl.Deaggregate(second, l.shard, &l.rec, f.shard(l.shard).hashRange())
				if st.DroppedOutOfRange != 0 {
					t.Errorf("second Put: %d user records landed outside %s", st.DroppedOutOfRange, l.shard)
				}
			}
			checkExactlyOnce(t, second, more)
			checkOrderPerKey(t, second, more)
		})
	}
}

// TestPutStaleShardMapLandingShardClosed reshards again right after the
// call on which aggregates landed on the wrong shards: when the producer
// refreshes its map, the shards they landed on are closed. Their consumers
// still filter by those shards' ranges, so the records outside must still be
// sent again.
func TestPutStaleShardMapLandingShardClosed(t *testing.T) {
	f := newFake(t, 1)
	ctx := testContext(t, f, 5*time.Second)
	p := newProducer(t, ctx, f, byShard)
	f.split("shardId-000000000000") // children 1 and 2
	f.afterPut = func(call int) {
		if call == 0 {
			f.split("shardId-000000000001")
			f.split("shardId-000000000002")
		}
	}
	recs := userRecords(200, 31, 0)
	if err := p.Put(ctx, recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, st := f.deliver(true)
	if st.DroppedOutOfRange == 0 {
		t.Fatalf("no user record landed outside its shard: the test tests nothing")
	}
	checkExactlyOnce(t, got, recs)
	checkStats(t, p, f, len(recs))
}

// TestPutStaleShardMapRefreshFails fails the ListShards call the producer
// makes to refresh its stale map. Put must then either deliver every record
// anyway or say that it could not; it must not report success for records
// that the landing shard's consumer drops.
func TestPutStaleShardMapRefreshFails(t *testing.T) {
	f := newFake(t, 1)
	ctx := testContext(t, f, 5*time.Second)
	p := newProducer(t, ctx, f, byShard)
	f.split("shardId-000000000000")
	f.listErrs = []error{&types.InternalFailureException{Message: aws.String("internal failure")}}
	recs := userRecords(200, 31, 0)
	err := p.Put(ctx, recs)
	got, st := f.deliver(true)
	if st.DroppedOutOfRange == 0 {
		t.Fatalf("no user record landed outside its shard: the test tests nothing")
	}
	if err != nil {
		t.Logf("Put: %v (reported: acceptable)", err)
		return
	}
	checkExactlyOnce(t, got, recs)
	checkStats(t, p, f, len(recs))
}

func TestPutRecordTooBig(t *testing.T) {
	tooBig := []struct {
		name string
		rec  kpl.UserRecord
	}{
		{"data of 1 MiB", kpl.UserRecord{PartitionKey: "big-key", Data: make([]byte, kpl.MaxRecordSize)}},
		{"1 MiB with its key", kpl.UserRecord{PartitionKey: "big-key", Data: make([]byte, kpl.MaxRecordSize-len("big-key")+1)}},
		{"explicit hash key", kpl.UserRecord{PartitionKey: "big-key", ExplicitHashKey: "12345", Data: make([]byte, 2*kpl.MaxRecordSize)}},
	}
	for _, m := range everyMode {
		for _, tb := range tooBig {
			t.Run(m.name+"/"+tb.name, func(t *testing.T) {
				t.Parallel()
				f := newFake(t, 2) // no abort: the fake answers like Kinesis
				// A producer that sends the record anyway gets Kinesis's
				// ValidationException, which it may retry until this
				// context ends.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				p := newProducer(t, ctx, f, m)
				recs := append(userRecords(20, 5, 0), tb.rec)
				recs = append(recs, userRecords(5, 5, 0)...)
				err := p.Put(ctx, recs)
				if err == nil {
					t.Fatalf("Put: got no error, want one naming %q", tb.rec.PartitionKey)
				}
				if !strings.Contains(err.Error(), `"big-key"`) {
					t.Errorf("Put: got error %q, want one naming the partition key %q", err, tb.rec.PartitionKey)
				}
				if len(f.calls) != 0 {
					t.Errorf("got %d PutRecords calls, want none: a batch that cannot all be put is refused before anything is sent", len(f.calls))
				}
			})
		}
	}
}

// TestPutLargestRecord puts a record as big as Kinesis takes: 1 MiB of data
// and partition key. It fits in a Kinesis record, if not in an aggregate
// with the aggregate's framing.
func TestPutLargestRecord(t *testing.T) {
	for _, m := range everyMode {
		t.Run(m.name, func(t *testing.T) {
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, m)
			recs := userRecords(10, 3, 0)
			recs = append(recs, kpl.UserRecord{PartitionKey: "big-key", Data: bytes.Repeat([]byte{'z'}, kpl.MaxRecordSize-len("big-key"))})
			if err := p.Put(ctx, recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, _ := f.deliver(true)
			checkExactlyOnce(t, got, recs)
			checkStats(t, p, f, len(recs))
		})
	}
}

func TestResourceNotFound(t *testing.T) {
	t.Run("New lists the shards of a missing stream", func(t *testing.T) {
		for _, m := range aggregated {
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			_, err := New(ctx, f, "no-such-stream", m.aggregate)
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Errorf("%s: New: got error %v, want a ResourceNotFoundException", m.name, err)
			}
		}
	})
	for _, m := range everyMode {
		t.Run("Put/"+m.name, func(t *testing.T) {
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, m)
			f.stream = "deleted" // the stream is deleted after New
			err := p.Put(ctx, userRecords(10, 3, 0))
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Fatalf("Put: got error %v, want a ResourceNotFoundException", err)
			}
			if !strings.Contains(err.Error(), testStream) {
				t.Errorf("Put: got error %q, want it to name the stream %q", err, testStream)
			}
			if len(f.calls) != 1 {
				t.Errorf("got %d PutRecords calls, want 1: a missing stream is not retried", len(f.calls))
			}
			if p.UserRecords != 0 || p.KinesisRecords != 0 {
				t.Errorf("stats: got %d user records, %d Kinesis records, want 0", p.UserRecords, p.KinesisRecords)
			}
		})
	}
}

func TestNewNoOpenShards(t *testing.T) {
	f := newFake(t, 1)
	f.shards[0].closed = true
	ctx := testContext(t, f, 5*time.Second)
	_, err := New(ctx, f, testStream, 10)
	if err == nil || !strings.Contains(err.Error(), "no open shards") {
		t.Errorf("New: got error %v, want one saying the stream has no open shards", err)
	}
}

func TestPutCanceled(t *testing.T) {
	f := newFake(t, 2)
	ctx, cancel := context.WithCancelCause(context.Background())
	p := newProducer(t, ctx, f, byShard)
	stop := errors.New("stop")
	f.throttle = func(types.PutRecordsRequestEntry) bool { return true }
	f.afterPut = func(int) { cancel(stop) }
	err := p.Put(ctx, userRecords(20, 4, 0))
	if !errors.Is(err, stop) {
		t.Errorf("Put: got error %v, want the context's cause %v", err, stop)
	}
	if len(f.calls) != 1 {
		t.Errorf("got %d PutRecords calls, want 1", len(f.calls))
	}
}

// acceptedKeys counts user records by userKey.
func acceptedKeys(recs []kpl.UserRecord) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[userKey(r.PartitionKey, r.ExplicitHashKey, r.Data)]++
	}
	return m
}

func deliveredKeys(got []stream.Record) map[string]int {
	m := map[string]int{}
	for _, r := range got {
		m[userKey(r.PartitionKey, r.ExplicitHashKey, r.Data)]++
	}
	return m
}

func sameCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: %d distinct records (%v…), want %d", what, len(got), first(got), len(want))
	}
}

func first(m map[string]int) string {
	for k, v := range m {
		return fmt.Sprintf("%q×%d", k, v)
	}
	return "none"
}

// TestOnAccepted: OnAccepted is given each user record once, when Kinesis
// accepted it where its consumer keeps it: after throttling, and after a
// reshard that made aggregates land outside their shard.
func TestOnAccepted(t *testing.T) {
	tests := []struct {
		name    string
		mode    mode
		reshard bool
	}{
		{"no aggregation", plain, false},
		{"by shard", byShard, false},
		{"by key", byKeyMode, false},
		{"by shard, stale shard map", byShard, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, 2)
			ctx := testContext(t, f, 5*time.Second)
			p := newProducer(t, ctx, f, tc.mode)
			var got []kpl.UserRecord
			p.OnAccepted = func(users []kpl.UserRecord) { got = append(got, users...) }
			if tc.reshard {
				f.split("shardId-000000000000")
			}
			f.throttle = func(e types.PutRecordsRequestEntry) bool { return len(f.calls) == 1 && len(e.Data)%2 == 0 }
			recs := userRecords(300, 37, 0)
			if err := p.Put(ctx, recs); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if f.failed == 0 {
				t.Fatal("the fake throttled nothing: the test tests nothing")
			}
			delivered, st := f.deliver(true)
			if tc.reshard && st.DroppedOutOfRange == 0 {
				t.Fatal("no user record landed outside its shard: the test tests nothing")
			}
			sameCounts(t, "OnAccepted vs put", acceptedKeys(got), acceptedKeys(recs))
			sameCounts(t, "OnAccepted vs delivered", acceptedKeys(got), deliveredKeys(delivered))
		})
	}
}

// TestOnAcceptedWhenPutStops: when Put ends early (its context ends while
// entries wait to be sent again), OnAccepted has been given exactly what
// Kinesis accepted, no more.
func TestOnAcceptedWhenPutStops(t *testing.T) {
	f := newFake(t, 2)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	p := newProducer(t, ctx, f, plain)
	var got []kpl.UserRecord
	p.OnAccepted = func(users []kpl.UserRecord) { got = append(got, users...) }
	f.throttle = func(e types.PutRecordsRequestEntry) bool { return len(e.Data)%2 == 0 }
	f.afterPut = func(int) { cancel(errors.New("interrupted")) }
	recs := userRecords(40, 5, 0)
	if err := p.Put(ctx, recs); err == nil {
		t.Fatal("Put returned nil after its context ended with entries left")
	}
	delivered, _ := f.deliver(true)
	if len(delivered) == 0 || len(delivered) == len(recs) {
		t.Fatalf("%d of %d records accepted: the test tests nothing", len(delivered), len(recs))
	}
	sameCounts(t, "OnAccepted vs accepted", acceptedKeys(got), deliveredKeys(delivered))
	if p.UserRecords != int64(len(got)) {
		t.Errorf("UserRecords = %d, want %d", p.UserRecords, len(got))
	}
}

// TestGiveUpAfter: calls that keep failing (a dead endpoint) make Put
// return the error after GiveUpAfter, instead of retrying for ever.
func TestGiveUpAfter(t *testing.T) {
	f := newFake(t, 1)
	ctx := testContext(t, f, 10*time.Second)
	p := newProducer(t, ctx, f, plain)
	p.GiveUpAfter = 700 * time.Millisecond
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for range 1000 {
		f.putErrs = append(f.putErrs, refused)
	}
	start := time.Now()
	err := p.Put(ctx, userRecords(5, 1, 0))
	took := time.Since(start)
	if !errors.Is(err, refused) {
		t.Fatalf("Put = %v, want the connection error", err)
	}
	if took > 2*time.Second {
		t.Errorf("Put gave up after %s, want about GiveUpAfter (700ms)", took)
	}
	if calls := len(f.calls); calls < 3 {
		t.Errorf("%d calls before giving up, want retries first", calls)
	}
	// A call that answers in between starts the count again.
	f.putErrs = []error{refused, refused}
	if err := p.Put(ctx, userRecords(5, 1, 0)); err != nil {
		t.Fatalf("Put after two failed calls: %v", err)
	}
}
