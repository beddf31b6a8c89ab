package shardline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/shards"

	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/terminal"
	"github.com/shardline/shardline/shared/terminal/ptytest"
	"github.com/shardline/shardline/shared/testwait"
)

// replayAsync runs the command line of a binary built on the public API
// with h as its own handler, writing to stdout and stderr; the channel
// gets its exit code.
func replayAsync(h func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error), args []string, stdout, stderr io.Writer) <-chan int {
	done := make(chan int, 1)
	go func() { done <- New(WithName("poller"), Handle(h)).Main(args, env(nil), stdout, stderr) }()
	return done
}

func waitExit(t *testing.T, done <-chan int, limit time.Duration, stderr fmt.Stringer) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(limit):
		t.Fatalf("replay did not return within %s\n%s", limit, stderr)
	}
	return -1
}

// TestReplayRate: -rate caps the user records per second over the whole
// replay, two shards sharing the cap: the records handled after the first
// call, over the time from the first call to the last, stay within the
// rate (plus the one chunk the limiter lets through at the start of its
// slot, and 10 %), and the replay is not far slower than the rate.
func TestReplayRate(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 2)
	kc := standintest.KinesisClient(srv.Endpoint)
	const total, rate, batch = 600, 200, 50
	putRound(t, kc, name, "a", 8, total)

	type call struct {
		at time.Time
		n  int
	}
	var mu sync.Mutex
	var calls []call
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		mu.Lock()
		calls = append(calls, call{time.Now(), len(ev.Records)})
		mu.Unlock()
		return events.KinesisEventResponse{}, nil
	}
	var stderr testwait.Buffer
	code := waitExit(t, replayAsync(h, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON",
		"-read-share", "0", "-rate", fmt.Sprint(rate), "-batch-size", fmt.Sprint(batch)}, io.Discard, &stderr), time.Minute, &stderr)
	if code != 0 {
		t.Fatalf("replay -rate %d: exit %d\n%s", rate, code, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, c := range calls {
		n += c.n
	}
	if n != total {
		t.Fatalf("%d records handled, want %d", n, total)
	}
	span := calls[len(calls)-1].at.Sub(calls[0].at).Seconds()
	after := total - calls[0].n
	if limit := rate*span*1.1 + batch; float64(after) > limit {
		t.Errorf("-rate %d: %d records in %.2fs after the first call (%.0f/s), want at most %.0f", rate, after, span, float64(after)/span, limit)
	}
	if min := float64(total-2*batch) / rate; span < min*0.9 {
		t.Errorf("-rate %d: the calls spanned %.2fs, want at least %.2fs", rate, span, min)
	}
	if span > 3*float64(total)/rate {
		t.Errorf("-rate %d: %d records took %.2fs, far slower than the rate", rate, total, span)
	}
	t.Logf("-rate %d: %d records in %.2fs after the first call: %.0f records/s", rate, after, span, float64(after)/span)
}

// TestReplayJSONLogs: with -log-format json every line a replay writes is
// JSON: its start, its summary with the counts, and the line it ends with
// when a record is given up (exit 1, with exitCode and the -from to resume
// with).
func TestReplayJSONLogs(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	ids := putRound(t, kc, name, "a", 3, 30)
	base := []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON", "-read-share", "0", "-log-format", "json", "-batch-size", "10"}

	jsonLines := func(what, stderr string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Errorf("%s: a line that is not JSON: %q", what, l)
				continue
			}
			out = append(out, m)
		}
		return out
	}
	var c collector
	res := replayMain(t, &c, base, nil)
	if res.code != 0 || len(c.data()) != len(ids) {
		t.Fatalf("replay: exit %d, %d records\n%s", res.code, len(c.data()), res.stderr)
	}
	lines := jsonLines("replay", res.stderr)
	msgs := map[string]map[string]any{}
	for _, m := range lines {
		msgs[fmt.Sprint(m["msg"])] = m
	}
	if msgs["replay started"] == nil {
		t.Errorf("no JSON line \"replay started\":\n%s", res.stderr)
	}
	if d := msgs["replay done"]; d == nil || d["handled"] != float64(len(ids)) || d["shards"] != float64(1) {
		t.Errorf("the summary %v: want handled %d, shards 1", d, len(ids))
	}

	c = collector{poison: map[string]bool{ids[12]: true}}
	res = replayMain(t, &c, append(slices.Clone(base), "-max-retry-attempts", "0"), nil)
	if res.code != 1 {
		t.Fatalf("replay with a poison record: exit %d, want 1\n%s", res.code, res.stderr)
	}
	lines = jsonLines("give-up", res.stderr)
	last := lines[len(lines)-1]
	if last["level"] != "ERROR" || last["exitCode"] != float64(1) || !strings.Contains(fmt.Sprint(last["msg"]), "resume with -shard shardId-000000000000 -from ") {
		t.Errorf("last line %v: want level ERROR, exitCode 1 and the -from to resume with", last)
	}
}

// servingAddr finds where -metrics-addr listens in text logs.
var servingAddr = regexp.MustCompile(`msg="serving /metrics, /healthz and /readyz" addr=(127\.0\.0\.1:\d+)`)

// TestReplayMetrics: -metrics-addr during a replay: the endpoint answers
// while the replay runs, and counts the records it handled. The handler
// holds the sixth batch of 10 until the test has read 50 records
// processed from /metrics; the replay then ends and the endpoint with it.
func TestReplayMetrics(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	ids := putRound(t, kc, name, "a", 1, 100) // one key: handled in the order put
	gate := make(chan struct{})
	var handled atomic.Int64
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == ids[50] {
				select {
				case <-gate:
				case <-ctx.Done():
					return events.KinesisEventResponse{}, ctx.Err()
				}
			}
		}
		handled.Add(int64(len(ev.Records)))
		return events.KinesisEventResponse{}, nil
	}
	var stderr testwait.Buffer
	done := replayAsync(h, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON",
		"-read-share", "0", "-batch-size", "10", "-metrics-addr", "127.0.0.1:0"}, io.Discard, &stderr)
	released := false
	defer func() {
		if !released {
			close(gate)
		}
	}()
	var base string
	testwait.Until(t, time.Minute, "the replay to say where /metrics listens", func() bool {
		if m := servingAddr.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	})
	var page string
	processed := regexp.MustCompile(`(?m)^shardline_records_processed_total(\{[^}]*\})? 50$`)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("/metrics:\n%s", grepLines(page, "shardline_records_processed_total"))
		}
	})
	testwait.Until(t, time.Minute, "50 records processed on /metrics", func() bool {
		code, p := get(t, base+"/metrics")
		page = p
		return code == http.StatusOK && processed.MatchString(p)
	})
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the replay: %d", code)
	}
	if !regexp.MustCompile(`(?m)^shardline_current_leases(\{[^}]*\})? 1$`).MatchString(page) {
		t.Errorf("/metrics: want the shard being replayed as a current lease:\n%s", grepLines(page, "shardline_current_leases"))
	}
	close(gate)
	released = true
	if code := waitExit(t, done, time.Minute, &stderr); code != 0 || handled.Load() != int64(len(ids)) {
		t.Fatalf("replay: exit %d, %d records handled (want %d)\n%s", code, handled.Load(), len(ids), stderr.String())
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Errorf("/metrics still answers after the replay ended")
	}
}

// progressLine is replay's live line: bar, share, shards, records, bytes,
// where in time the slowest shard is, ETA, given up.
var progressLine = regexp.MustCompile(`replay \[[#.]{20}\] +\d+% \| [0-2]/2 shards \| \d+ records \| [0-9.]+ \S*B \| at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| ETA \S+ \| 0 given up`)

// TestReplayProgressLine: on a pseudo-terminal a replay keeps a progress
// line (share done, shards, records, bytes, position in time, ETA), redrawn
// while it runs and erased before its summary; the logs are text.
func TestReplayProgressLine(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 2)
	kc := standintest.KinesisClient(srv.Endpoint)
	ids := putRound(t, kc, name, "a", 4, 300)
	tty, screen := ptytest.Open(t)
	var c collector
	done := replayAsync(c.handle, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON",
		"-read-share", "0", "-rate", "100", "-batch-size", "20"}, tty, tty)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("terminal:\n%q", tail(screen.String(), 3000))
		}
	})
	testwait.Until(t, time.Minute, "the progress line", func() bool { return progressLine.MatchString(screen.String()) })
	if code := waitExit(t, done, time.Minute, screen); code != 0 || len(c.data()) != len(ids) {
		t.Fatalf("replay on a terminal: exit %d, %d records (want %d)\n%q", code, len(c.data()), len(ids), screen.String())
	}
	// The terminal's bytes reach the test after the program wrote them.
	testwait.Until(t, 10*time.Second, "the summary on the terminal", func() bool {
		s := screen.String()
		return strings.Contains(s, `msg="replay done"`) && strings.HasSuffix(s, "\r\n")
	})
	s := screen.String()
	t.Logf("a progress line: %q", progressLine.FindString(s))
	if !strings.Contains(s, terminal.Erase+"replay [") {
		t.Errorf("the progress line is not drawn over an erased line:\n%q", tail(s, 2000))
	}
	i := strings.Index(s, `msg="replay done"`)
	if i < 0 {
		t.Fatalf("no text summary on the terminal:\n%q", tail(s, 2000))
	}
	if k := strings.LastIndex(s[:i], "time="); k < 0 || !strings.HasSuffix(s[:k], "\n") && !strings.HasSuffix(s[:k], terminal.Erase) {
		t.Errorf("the summary was written after other text on its line: %q", tail(s[:i], 300))
	}
	if j := strings.LastIndex(s, "replay ["); j > i {
		t.Errorf("the progress line drawn again after the summary: %q", s[j:])
	}
	if !strings.HasSuffix(s, "\r\n") && !strings.HasSuffix(s, terminal.Erase) {
		t.Errorf("the terminal ends with %q: want the progress line erased", tail(s, 200))
	}
}

// TestReplayLanes: with -parallelization-factor 3 and
// -max-batching-window, a replay of two shards goes through the lanes:
// calls of one shard overlap, every record is handled once, and each
// key's records come in the order put.
func TestReplayLanes(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 2)
	kc := standintest.KinesisClient(srv.Endpoint)
	ids := putRound(t, kc, name, "a", 12, 600)
	var (
		mu       sync.Mutex
		got      []string
		inFlight = map[string]int{}
		most     int
	)
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		shard, _, _ := strings.Cut(ev.Records[0].EventID, ":")
		mu.Lock()
		inFlight[shard]++
		most = max(most, inFlight[shard])
		mu.Unlock()
		time.Sleep(3 * time.Millisecond) // the handler's work: not synchronisation
		mu.Lock()
		for _, r := range ev.Records {
			got = append(got, string(r.Kinesis.Data))
		}
		inFlight[shard]--
		mu.Unlock()
		return events.KinesisEventResponse{}, nil
	}
	var stderr testwait.Buffer
	code := waitExit(t, replayAsync(h, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON",
		"-read-share", "0", "-parallelization-factor", "3", "-max-batching-window", "50ms", "-batch-size", "7"}, io.Discard, &stderr), time.Minute, &stderr)
	if code != 0 {
		t.Fatalf("replay with lanes: exit %d\n%s", code, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("record %s handled %d times, want once", id, count[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("%d records handled, want %d", len(got), len(ids))
	}
	inOrderPerKey(t, got)
	if most < 2 {
		t.Errorf("at most %d call of a shard in flight at once: the lanes were not used", most)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("handled=%d", len(ids))) {
		t.Errorf("no summary with handled=%d:\n%s", len(ids), stderr.String())
	}
}

// splitFirst splits the stream's first shard in the middle of its hash
// range and waits for the stream to be ACTIVE; it returns the parent and
// the two children.
func splitFirst(t *testing.T, kc *kinesis.Client, name string) (parent string, children []string) {
	t.Helper()
	list, err := shards.List(context.Background(), kc, name)
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := new(big.Int).SetString(list[0].StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(list[0].EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: &name, ShardToSplit: aws.String(list[0].ID), NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "stream ACTIVE after the split", func() bool {
		out, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
	list, err = shards.List(context.Background(), kc, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if slices.Contains(s.Parents, list[0].ID) {
			children = append(children, s.ID)
		}
	}
	if len(children) != 2 {
		t.Fatalf("the split made children %v, want 2", children)
	}
	return list[0].ID, children
}

// TestReplayChildWithoutItsParent: a child shard given with -shard whose
// parent holds records of the range but is not given is read as asked
// (exactly its own records), and one INFO line says that its parent is
// not in the replay, so per-key order across the split is not kept. No
// such line when the parent is given too, or when the parent holds no
// record of the range (all of it before -from).
func TestReplayChildWithoutItsParent(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	a := putRound(t, kc, name, "a", 6, 60)
	mid := apart()
	parent, children := splitFirst(t, kc, name)
	b := putRound(t, kc, name, "b", 6, 60)
	const line = "a parent of this shard holds records of the range and is not in the replay"
	base := []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-read-share", "0"}

	got := map[string]int{}
	for _, child := range children {
		var c collector
		res := replayMain(t, &c, append(slices.Clone(base), "-shard", child, "-from", "TRIM_HORIZON"), nil)
		if res.code != 0 {
			t.Fatalf("replay -shard %s: exit %d\n%s", child, res.code, res.stderr)
		}
		for _, id := range c.data() {
			got[id]++
			if !strings.HasPrefix(id, "b:") {
				t.Errorf("replay -shard %s delivered %s, a record of its parent", child, id)
			}
		}
		inOrderPerKey(t, c.data())
		var said []string
		for _, l := range strings.Split(res.stderr, "\n") {
			if strings.Contains(l, line) {
				said = append(said, l)
			}
		}
		if len(said) != 1 || !strings.Contains(said[0], "level=INFO") || !strings.Contains(said[0], "shard="+child) ||
			!strings.Contains(said[0], "parent="+parent) || !strings.Contains(said[0], "add -shard "+parent) {
			t.Errorf("replay -shard %s: want one INFO line naming the shard and its parent %s, got %q", child, parent, said)
		}
	}
	for _, id := range b {
		if got[id] != 1 {
			t.Errorf("record %s delivered %d times by the replays of the two children, want once", id, got[id])
		}
	}

	// With its parent: read after it, no line.
	var c collector
	res := replayMain(t, &c, append(slices.Clone(base), "-shard", parent, "-shard", children[0], "-from", "TRIM_HORIZON"), nil)
	if res.code != 0 || strings.Contains(res.stderr, line) {
		t.Errorf("replay of the parent and a child: exit %d, the line said: %v\n%s", res.code, strings.Contains(res.stderr, line), res.stderr)
	}
	if n := len(c.data()); n <= len(a) || n >= len(a)+len(b) {
		t.Errorf("replay of the parent and a child delivered %d records, want round a (%d) and part of round b", n, len(a))
	}
	inOrderPerKey(t, c.data())

	// From after the parent's last record: it holds none of the range.
	c = collector{}
	res = replayMain(t, &c, append(slices.Clone(base), "-shard", children[0], "-from", mid.UTC().Format(time.RFC3339Nano)), nil)
	if res.code != 0 || strings.Contains(res.stderr, line) {
		t.Errorf("replay of a child from after its parent's records: exit %d, the line said: %v\n%s", res.code, strings.Contains(res.stderr, line), res.stderr)
	}
}
