package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

const (
	testStream = "words"
	testShard  = "shardId-000000000000"
)

// answer is one scripted reply of the fake.
type answer struct {
	out *kinesis.GetRecordsOutput
	err error
	// do runs when the answer is given (to cancel a context, say).
	do func()
}

// fakeKinesis is an in-process stand-in for the two Kinesis calls a reader
// makes. GetShardIterator hands out it-1, it-2, … unless iterErrs says
// otherwise; GetRecords gives the scripted answers in order.
type fakeKinesis struct {
	t        *testing.T
	iterIn   []*kinesis.GetShardIteratorInput
	iterErrs []error // consumed one per GetShardIterator call; nil: succeed
	recIn    []*kinesis.GetRecordsInput
	answers  []answer
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.iterIn = append(f.iterIn, in)
	if len(f.iterErrs) > 0 {
		err := f.iterErrs[0]
		f.iterErrs = f.iterErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("it-%d", len(f.iterIn)))}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.recIn = append(f.recIn, in)
	if len(f.answers) == 0 {
		f.t.Errorf("GetRecords call %d with no answer scripted", len(f.recIn))
		return nil, &types.ResourceNotFoundException{Message: aws.String("script exhausted")}
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	if a.do != nil {
		a.do()
	}
	return a.out, a.err
}

var _ KinesisAPI = (*fakeKinesis)(nil)

func records(seqs ...string) []types.Record {
	out := make([]types.Record, len(seqs))
	for i, s := range seqs {
		out[i] = types.Record{SequenceNumber: aws.String(s), PartitionKey: aws.String("pk"), Data: []byte(s)}
	}
	return out
}

func page(next string, behind int64, seqs ...string) answer {
	out := &kinesis.GetRecordsOutput{Records: records(seqs...), MillisBehindLatest: aws.Int64(behind)}
	if next != "" {
		out.NextShardIterator = aws.String(next)
	}
	return answer{out: out}
}

func seqsOf(rs []types.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = aws.ToString(r.SequenceNumber)
	}
	return out
}

// fastConfig has tiny waits so that no test waits for real.
func fastConfig(start string) Config {
	return Config{
		StreamName:    testStream,
		ShardID:       testShard,
		Start:         stream.Position{Seq: start},
		RetryWaitTime: time.Microsecond,
		MaxBackoff:    50 * time.Microsecond,
		BusyInterval:  time.Nanosecond,
		IdleInterval:  time.Nanosecond,
	}
}

func newReader(t *testing.T, f *fakeKinesis, cfg Config) *Reader {
	t.Helper()
	f.t = t
	r, err := New(f, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no stream", Config{ShardID: testShard, Start: stream.Position{Seq: stream.Latest}}, "stream name"},
		{"no shard", Config{StreamName: testStream, Start: stream.Position{Seq: stream.Latest}}, "shard id"},
		{"no start", Config{StreamName: testStream, ShardID: testShard}, "no start position"},
		{"shard end", Config{StreamName: testStream, ShardID: testShard, Start: stream.Position{Seq: stream.ShardEnd}}, "already ended"},
		{"AT_TIMESTAMP without timestamp", Config{StreamName: testStream, ShardID: testShard, Start: stream.Position{Seq: stream.AtTimestamp}}, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&fakeKinesis{t: t}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestIteratorTypes(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		start   string
		want    types.ShardIteratorType
		wantSeq string
		wantTS  bool
	}{
		{stream.TrimHorizon, types.ShardIteratorTypeTrimHorizon, "", false},
		{stream.Latest, types.ShardIteratorTypeLatest, "", false},
		{stream.AtTimestamp, types.ShardIteratorTypeAtTimestamp, "", true},
		{"49590338271490256608559692538361571095921575989136588898", types.ShardIteratorTypeAtSequenceNumber, "49590338271490256608559692538361571095921575989136588898", false},
	}
	for _, tt := range tests {
		t.Run(tt.start, func(t *testing.T) {
			f := &fakeKinesis{answers: []answer{page("it-next", 0, "1")}}
			cfg := fastConfig(tt.start)
			cfg.Timestamp = ts
			cfg.Limit, cfg.TargetBytes = 500, -1 // a fixed limit
			r := newReader(t, f, cfg)
			b, err := r.Next(context.Background())
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if got, want := seqsOf(b.Records), []string{"1"}; !slices.Equal(got, want) {
				t.Errorf("records = %v, want %v", got, want)
			}
			if len(f.iterIn) != 1 {
				t.Fatalf("GetShardIterator called %d times, want 1", len(f.iterIn))
			}
			in := f.iterIn[0]
			if got, want := in.ShardIteratorType, tt.want; got != want {
				t.Errorf("ShardIteratorType = %q, want %q", got, want)
			}
			if got, want := aws.ToString(in.StartingSequenceNumber), tt.wantSeq; got != want {
				t.Errorf("StartingSequenceNumber = %q, want %q", got, want)
			}
			if got := in.Timestamp; tt.wantTS && (got == nil || !got.Equal(ts)) || !tt.wantTS && got != nil {
				t.Errorf("Timestamp = %v, want %v (wanted: %v)", got, ts, tt.wantTS)
			}
			if got, want := aws.ToString(in.StreamName), testStream; got != want {
				t.Errorf("StreamName = %q, want %q", got, want)
			}
			if got, want := aws.ToString(in.ShardId), testShard; got != want {
				t.Errorf("ShardId = %q, want %q", got, want)
			}
			gr := f.recIn[0]
			if got, want := aws.ToString(gr.ShardIterator), "it-1"; got != want {
				t.Errorf("GetRecords iterator = %q, want %q", got, want)
			}
			if got, want := aws.ToInt32(gr.Limit), int32(500); got != want {
				t.Errorf("GetRecords limit = %d, want %d", got, want)
			}
		})
	}
}

func TestNextFollowsIterators(t *testing.T) {
	f := &fakeKinesis{answers: []answer{
		page("it-a", 5000, "1", "2"),
		page("it-b", 0),
		page("it-c", 0, "3"),
	}}
	cfg := fastConfig(stream.TrimHorizon)
	r := newReader(t, f, cfg)
	var got []string
	for range 3 {
		b, err := r.Next(context.Background())
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if b.End {
			t.Errorf("Batch.End = true, want false")
		}
		got = append(got, seqsOf(b.Records)...)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("records = %v, want %v", got, want)
	}
	var its []string
	for _, in := range f.recIn {
		its = append(its, aws.ToString(in.ShardIterator))
	}
	if want := []string{"it-1", "it-a", "it-b"}; !slices.Equal(its, want) {
		t.Errorf("iterators used = %v, want %v", its, want)
	}
	// The default target (1 MiB) over 16 KiB records: 64.
	if got, want := aws.ToInt32(f.recIn[0].Limit), int32(64); got != want {
		t.Errorf("first limit = %d, want %d", got, want)
	}
	if len(f.iterIn) != 1 {
		t.Errorf("GetShardIterator called %d times, want 1", len(f.iterIn))
	}
}

func TestMillisBehindLatest(t *testing.T) {
	f := &fakeKinesis{answers: []answer{page("it-a", 1234, "1")}}
	r := newReader(t, f, fastConfig(stream.Latest))
	b, err := r.Next(context.Background())
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got, want := b.MillisBehindLatest, int64(1234); got != want {
		t.Errorf("MillisBehindLatest = %d, want %d", got, want)
	}
}

func TestExpiredIterator(t *testing.T) {
	expired := answer{err: &types.ExpiredIteratorException{Message: aws.String("Iterator expired")}}
	t.Run("after records", func(t *testing.T) {
		f := &fakeKinesis{answers: []answer{
			page("it-a", 10, "100", "200"),
			expired,
			page("it-b", 0, "300"),
		}}
		r := newReader(t, f, fastConfig(stream.TrimHorizon))
		b1, err := r.Next(context.Background())
		if err != nil {
			t.Fatalf("Next 1: %v", err)
		}
		b2, err := r.Next(context.Background())
		if err != nil {
			t.Fatalf("Next 2: %v", err)
		}
		if got, want := append(seqsOf(b1.Records), seqsOf(b2.Records)...), []string{"100", "200", "300"}; !slices.Equal(got, want) {
			t.Errorf("records = %v, want %v", got, want)
		}
		if len(f.iterIn) != 2 {
			t.Fatalf("GetShardIterator called %d times, want 2", len(f.iterIn))
		}
		in := f.iterIn[1]
		if got, want := in.ShardIteratorType, types.ShardIteratorTypeAfterSequenceNumber; got != want {
			t.Errorf("renewed ShardIteratorType = %q, want %q", got, want)
		}
		if got, want := aws.ToString(in.StartingSequenceNumber), "200"; got != want {
			t.Errorf("renewed StartingSequenceNumber = %q, want %q (the last record returned)", got, want)
		}
		if got, want := aws.ToString(f.recIn[2].ShardIterator), "it-2"; got != want {
			t.Errorf("GetRecords after renewal used %q, want %q", got, want)
		}
	})
	t.Run("after an empty page keeps the last record", func(t *testing.T) {
		f := &fakeKinesis{answers: []answer{
			page("it-a", 10, "100"),
			page("it-b", 0),
			expired,
			page("it-c", 0),
		}}
		r := newReader(t, f, fastConfig(stream.TrimHorizon))
		for i := range 3 {
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatalf("Next %d: %v", i+1, err)
			}
		}
		if len(f.iterIn) != 2 {
			t.Fatalf("GetShardIterator called %d times, want 2", len(f.iterIn))
		}
		if got, want := aws.ToString(f.iterIn[1].StartingSequenceNumber), "100"; got != want {
			t.Errorf("renewed StartingSequenceNumber = %q, want %q", got, want)
		}
	})
	t.Run("LATEST before any record goes on from when it started", func(t *testing.T) {
		f := &fakeKinesis{answers: []answer{page("it-a", 0), expired, page("it-b", 0, "100")}}
		r := newReader(t, f, fastConfig(stream.Latest))
		asked := time.Now()
		for i := range 2 {
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatalf("Next %d: %v", i+1, err)
			}
		}
		if len(f.iterIn) != 2 || f.iterIn[0].ShardIteratorType != types.ShardIteratorTypeLatest {
			t.Fatalf("GetShardIterator calls %d, first %v; want 2, LATEST first", len(f.iterIn), f.iterIn[0].ShardIteratorType)
		}
		in := f.iterIn[1]
		if in.ShardIteratorType != types.ShardIteratorTypeAtTimestamp || in.Timestamp == nil || in.Timestamp.Sub(asked).Abs() > time.Second {
			t.Errorf("renewed iterator %s at %v, want AT_TIMESTAMP at the first LATEST (%v), not a new LATEST", in.ShardIteratorType, in.Timestamp, asked)
		}
	})
	t.Run("before any record restarts at the start", func(t *testing.T) {
		const seq = "49590338271490256608559692538361571095921575989136588898"
		f := &fakeKinesis{answers: []answer{expired, page("it-a", 0, seq)}}
		r := newReader(t, f, fastConfig(seq))
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(f.iterIn) != 2 {
			t.Fatalf("GetShardIterator called %d times, want 2", len(f.iterIn))
		}
		for i, in := range f.iterIn {
			if in.ShardIteratorType != types.ShardIteratorTypeAtSequenceNumber || aws.ToString(in.StartingSequenceNumber) != seq {
				t.Errorf("GetShardIterator %d = %s %s, want %s %s", i+1, in.ShardIteratorType,
					aws.ToString(in.StartingSequenceNumber), types.ShardIteratorTypeAtSequenceNumber, seq)
			}
		}
	})
}

// logRecorder is a slog.Handler that keeps each record's message and "wait"
// attribute.
type logRecorder struct {
	mu    sync.Mutex
	msgs  []string
	waits []time.Duration
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "wait" {
			l.msgs = append(l.msgs, r.Message)
			l.waits = append(l.waits, a.Value.Duration())
		}
		return true
	})
	return nil
}

func TestThrottling(t *testing.T) {
	const base = time.Microsecond
	pt := &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded for shard")}
	le := &types.LimitExceededException{Message: aws.String("limit")}
	tests := []struct {
		name      string
		maxTries  int
		answers   []answer
		wantCalls int
		wantWaits []time.Duration
	}{
		{
			name:      "retried at the wait time, then backed off",
			maxTries:  3,
			answers:   []answer{{err: pt}, {err: pt}, {err: pt}, {err: pt}, {err: pt}, page("it-a", 0, "1")},
			wantCalls: 6,
			wantWaits: []time.Duration{base, base, base, 2 * base, 4 * base},
		},
		{
			name:      "one retry attempt",
			maxTries:  1,
			answers:   []answer{{err: pt}, {err: le}, {err: pt}, page("it-a", 0, "1")},
			wantCalls: 4,
			wantWaits: []time.Duration{base, 2 * base, 4 * base},
		},
		{
			name:      "back-off is capped",
			maxTries:  1,
			answers:   []answer{{err: pt}, {err: pt}, {err: pt}, {err: pt}, {err: pt}, {err: pt}, {err: pt}, {err: pt}, page("it-a", 0, "1")},
			wantCalls: 9,
			wantWaits: []time.Duration{base, 2 * base, 4 * base, 8 * base, 16 * base, 16 * base, 16 * base, 16 * base},
		},
		{
			name:      "other transient faults back off from the first",
			maxTries:  3,
			answers:   []answer{{err: errors.New("connection reset")}, {err: errors.New("connection reset")}, page("it-a", 0, "1")},
			wantCalls: 3,
			wantWaits: []time.Duration{2 * base, 4 * base},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKinesis{answers: tt.answers}
			rec := &logRecorder{}
			cfg := fastConfig(stream.TrimHorizon)
			cfg.RetryWaitTime = base
			cfg.RetryMaxAttempts = tt.maxTries
			cfg.MaxBackoff = 16 * base
			cfg.Logger = slog.New(rec)
			r := newReader(t, f, cfg)
			b, err := r.Next(context.Background())
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if got, want := seqsOf(b.Records), []string{"1"}; !slices.Equal(got, want) {
				t.Errorf("records = %v, want %v", got, want)
			}
			if got, want := len(f.recIn), tt.wantCalls; got != want {
				t.Errorf("GetRecords called %d times, want %d", got, want)
			}
			if !slices.Equal(rec.waits, tt.wantWaits) {
				t.Errorf("waits = %v (%q), want %v", rec.waits, rec.msgs, tt.wantWaits)
			}
			if got, want := len(f.iterIn), 1; got != want {
				t.Errorf("GetShardIterator called %d times, want %d (the iterator is still good)", got, want)
			}
		})
	}
}

func TestThrottleCountResetsPerNext(t *testing.T) {
	pt := &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded")}
	f := &fakeKinesis{answers: []answer{{err: pt}, {err: pt}, page("it-a", 1, "1"), {err: pt}, page("it-b", 0, "2")}}
	rec := &logRecorder{}
	cfg := fastConfig(stream.TrimHorizon)
	cfg.RetryMaxAttempts = 1
	cfg.Logger = slog.New(rec)
	r := newReader(t, f, cfg)
	for i := range 2 {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatalf("Next %d: %v", i+1, err)
		}
	}
	base := cfg.RetryWaitTime
	if want := []time.Duration{base, 2 * base, base}; !slices.Equal(rec.waits, want) {
		t.Errorf("waits = %v, want %v", rec.waits, want)
	}
}

func TestGetShardIteratorThrottled(t *testing.T) {
	f := &fakeKinesis{
		iterErrs: []error{&types.LimitExceededException{Message: aws.String("limit")}, &types.ProvisionedThroughputExceededException{}},
		answers:  []answer{page("it-a", 0, "1")},
	}
	r := newReader(t, f, fastConfig(stream.Latest))
	if _, err := r.Next(context.Background()); err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got, want := len(f.iterIn), 3; got != want {
		t.Errorf("GetShardIterator called %d times, want %d", got, want)
	}
}

func TestFatal(t *testing.T) {
	tests := []struct {
		name     string
		iterErr  error
		recErr   error
		wantRecs int
	}{
		{name: "GetRecords ResourceNotFound", recErr: &types.ResourceNotFoundException{Message: aws.String("Shard not found")}, wantRecs: 1},
		{name: "GetRecords AccessDenied", recErr: &types.AccessDeniedException{Message: aws.String("no")}, wantRecs: 1},
		{name: "GetRecords KMSAccessDenied", recErr: &types.KMSAccessDeniedException{Message: aws.String("no")}, wantRecs: 1},
		{name: "GetShardIterator ResourceNotFound", iterErr: &types.ResourceNotFoundException{Message: aws.String("Stream not found")}},
		{name: "GetShardIterator InvalidArgument", iterErr: &types.InvalidArgumentException{Message: aws.String("bad sequence number")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKinesis{iterErrs: []error{tt.iterErr}}
			if tt.recErr != nil {
				f.answers = []answer{{err: tt.recErr}}
			}
			r := newReader(t, f, fastConfig(stream.TrimHorizon))
			_, err := r.Next(context.Background())
			want := tt.iterErr
			if want == nil {
				want = tt.recErr
			}
			if !errors.Is(err, want) {
				t.Fatalf("Next = %v, want it to wrap %v", err, want)
			}
			if !IsFatal(err) {
				t.Errorf("IsFatal(%v) = false, want true", err)
			}
			if !strings.Contains(err.Error(), testShard) {
				t.Errorf("error %q does not name the shard", err)
			}
			if got := len(f.recIn); got != tt.wantRecs {
				t.Errorf("GetRecords called %d times, want %d (no retry)", got, tt.wantRecs)
			}
			if got := len(f.iterIn); got != 1 {
				t.Errorf("GetShardIterator called %d times, want 1 (no retry)", got)
			}
		})
	}
}

func TestShardEnd(t *testing.T) {
	children := []types.ChildShard{
		{ShardId: aws.String("shardId-000000000001"), ParentShards: []string{testShard},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("1")}},
		{ShardId: aws.String("shardId-000000000002"), ParentShards: []string{testShard},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("2"), EndingHashKey: aws.String("3")}},
	}
	last := page("", 0, "7", "8")
	last.out.ChildShards = children
	f := &fakeKinesis{answers: []answer{page("it-a", 10, "5", "6"), last}}
	r := newReader(t, f, fastConfig(stream.TrimHorizon))
	b, err := r.Next(context.Background())
	if err != nil || b.End {
		t.Fatalf("Next 1 = End %v, %v; want more to come", b.End, err)
	}
	b, err = r.Next(context.Background())
	if err != nil {
		t.Fatalf("Next 2: %v", err)
	}
	if !b.End {
		t.Errorf("Batch.End = false, want true")
	}
	if got, want := seqsOf(b.Records), []string{"7", "8"}; !slices.Equal(got, want) {
		t.Errorf("last records = %v, want %v", got, want)
	}
	var ids []string
	for _, c := range b.Children {
		ids = append(ids, aws.ToString(c.ShardId))
	}
	if want := []string{"shardId-000000000001", "shardId-000000000002"}; !slices.Equal(ids, want) {
		t.Errorf("children = %v, want %v", ids, want)
	}
	for range 2 {
		if _, err := r.Next(context.Background()); !errors.Is(err, ErrShardEnded) {
			t.Errorf("Next after the end = %v, want ErrShardEnded", err)
		}
	}
	if got, want := len(f.recIn), 2; got != want {
		t.Errorf("GetRecords called %d times, want %d", got, want)
	}
}

func TestContextEndsWait(t *testing.T) {
	cause := errors.New("lease lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	f := &fakeKinesis{answers: []answer{{
		err: &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded")},
		do:  func() { cancel(cause) },
	}}}
	cfg := fastConfig(stream.TrimHorizon)
	cfg.RetryWaitTime = time.Hour // only the context can end this wait
	r := newReader(t, f, cfg)
	if _, err := r.Next(ctx); !errors.Is(err, cause) {
		t.Errorf("Next = %v, want %v", err, cause)
	}
	if got, want := len(f.recIn), 1; got != want {
		t.Errorf("GetRecords called %d times, want %d", got, want)
	}
}

func TestContextAlreadyDone(t *testing.T) {
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	f := &fakeKinesis{}
	r := newReader(t, f, fastConfig(stream.TrimHorizon))
	if _, err := r.Next(ctx); !errors.Is(err, cause) {
		t.Errorf("Next = %v, want %v", err, cause)
	}
	if len(f.iterIn) != 0 || len(f.recIn) != 0 {
		t.Errorf("calls made after the context ended: %d GetShardIterator, %d GetRecords", len(f.iterIn), len(f.recIn))
	}
}

func TestClassifiers(t *testing.T) {
	tests := []struct {
		err            error
		throttle, fata bool
	}{
		{&types.ProvisionedThroughputExceededException{}, true, false},
		{&types.LimitExceededException{}, true, false},
		{&types.KMSThrottlingException{}, true, false},
		{fmt.Errorf("wrapped: %w", &types.ProvisionedThroughputExceededException{}), true, false},
		{&types.ResourceNotFoundException{}, false, true},
		{&types.InvalidArgumentException{}, false, true},
		{&types.AccessDeniedException{}, false, true},
		{&types.KMSDisabledException{}, false, true},
		{&types.KMSInvalidStateException{}, false, true},
		{&types.KMSNotFoundException{}, false, true},
		{&types.KMSAccessDeniedException{}, false, true},
		{&types.ExpiredIteratorException{}, false, false},
		{errors.New("connection reset"), false, false},
	}
	for _, tt := range tests {
		if got := IsThrottle(tt.err); got != tt.throttle {
			t.Errorf("IsThrottle(%T) = %v, want %v", tt.err, got, tt.throttle)
		}
		if got := IsFatal(tt.err); got != tt.fata {
			t.Errorf("IsFatal(%T) = %v, want %v", tt.err, got, tt.fata)
		}
	}
}

// TestLimitFollowsTargetBytes: after the first read, each GetRecords asks
// for about TargetBytes' worth of records at the mean size read so far,
// at most Limit.
func TestLimitFollowsTargetBytes(t *testing.T) {
	big := func(n, size int) answer {
		out := &kinesis.GetRecordsOutput{NextShardIterator: aws.String("it"), MillisBehindLatest: aws.Int64(1000)}
		for i := range n {
			out.Records = append(out.Records, types.Record{SequenceNumber: aws.String(fmt.Sprint(i + 1)), PartitionKey: aws.String(""), Data: make([]byte, size)})
		}
		return answer{out: out}
	}
	f := &fakeKinesis{answers: []answer{big(10, 10_000), big(10, 10_000), big(10, 10), big(1, 10)}}
	cfg := fastConfig(stream.TrimHorizon)
	cfg.TargetBytes = 100_000
	r := newReader(t, f, cfg)
	for i := range 4 {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatalf("Next %d: %v", i, err)
		}
	}
	var got []int32
	for _, in := range f.recIn {
		got = append(got, aws.ToInt32(in.Limit))
	}
	// 100,000 / 16 KiB = 6 first (no record seen yet: records of 16 KiB
	// assumed, not FirstLimit's 100, which could be 100 MB of them); then
	// 100,000 / (10,000 + a 1-digit sequence number + 64 of overhead) = 9;
	// then the mean moves to (10,065 + 75) / 2 → 19.
	if want := []int32{6, 9, 9, 19}; !slices.Equal(got, want) {
		t.Errorf("limits = %v, want %v", got, want)
	}
}

// TestDebugLinePerGetRecords: at DEBUG every GetRecords call that answers
// is one line with its records, millisBehindLatest and duration (timed
// even with NoTiming); above DEBUG there is none.
func TestDebugLinePerGetRecords(t *testing.T) {
	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var buf bytes.Buffer
		f := &fakeKinesis{answers: []answer{page("it-a", 1234, "1", "2"), page("it-b", 0)}}
		cfg := fastConfig(stream.TrimHorizon)
		cfg.NoTiming = true
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lvl})).With("shard", testShard)
		r := newReader(t, f, cfg)
		for range 2 {
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if lvl == slog.LevelInfo {
			if buf.Len() != 0 {
				t.Errorf("at INFO: %q, want no line", buf.String())
			}
			continue
		}
		want := []string{"msg=GetRecords shard=" + testShard + " records=2 millisBehindLatest=1234 duration=", "msg=GetRecords shard=" + testShard + " records=0 millisBehindLatest=0 duration="}
		if len(lines) != 2 {
			t.Fatalf("at DEBUG: %d lines, want 2:\n%s", len(lines), buf.String())
		}
		for i, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
			}
		}
	}
}

// The next read is timed from the start of the last: BusyInterval while
// behind, IdleInterval once caught up (no records, or MillisBehindLatest
// 0). So a reader that spent BusyInterval handling a batch reads again at
// once, and never more often than one call per BusyInterval.
func TestPollIntervalAdapts(t *testing.T) {
	const busy, idle = time.Hour, 2 * time.Hour
	cases := []struct {
		name string
		a    answer
		want time.Duration
	}{
		{"records, behind", page("it-a", 5000, "1", "2"), busy},
		{"records, caught up", page("it-a", 0, "1", "2"), idle},
		{"no records", page("it-a", 5000), idle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var called time.Time
			tc.a.do = func() { called = time.Now() }
			f := &fakeKinesis{answers: []answer{tc.a}}
			cfg := fastConfig(stream.TrimHorizon)
			cfg.BusyInterval, cfg.IdleInterval = busy, idle
			r := newReader(t, f, cfg)
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The call started before the fake saw it: the next one is due
			// at most the interval after the fake's clock, and at least the
			// interval minus the (sub-second) time the call took.
			got := r.nextCall.Sub(called)
			if got > tc.want || got < tc.want-time.Minute {
				t.Errorf("next call %v after this one began, want %v", got, tc.want)
			}
		})
	}
	r, err := New(&fakeKinesis{}, Config{StreamName: "s", ShardID: "x", Start: stream.Position{Seq: stream.TrimHorizon}})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.BusyInterval != 200*time.Millisecond || r.cfg.IdleInterval != 200*time.Millisecond {
		t.Errorf("default intervals %v, %v; want 200ms (Kinesis's 5 reads per second per shard)", r.cfg.BusyInterval, r.cfg.IdleInterval)
	}
}
