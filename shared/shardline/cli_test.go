package shardline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/testwait"
)

// awsEnv gives the in-process commands dummy credentials and a region, and
// keeps the SDK away from the instance metadata service.
func awsEnv(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

// fakeKinesis answers the Kinesis calls the commands make, for one stream
// "words" with one shard, over the real SDK's JSON protocol. After accept
// PutRecords calls (-1: no limit) it stops: the next call hangs until the
// client gives up (hang), or the endpoint goes away, refusing connections
// from then on.
type fakeKinesis struct {
	srv    *httptest.Server
	accept int
	hang   bool

	mu    sync.Mutex
	puts  int
	lines []string // data of the accepted records
	stuck chan struct{}
}

func newFakeKinesis(t *testing.T, accept int, hang bool) *fakeKinesis {
	f := &fakeKinesis{accept: accept, hang: hang, stuck: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKinesis) answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeKinesis) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	var in struct {
		StreamName             string
		StartingSequenceNumber string
		Records                []struct {
			Data         []byte
			PartitionKey string
		}
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if in.StreamName != "words" {
		f.answer(w, 400, map[string]string{"__type": "ResourceNotFoundException", "message": "Stream " + in.StreamName + " under account 000000000000 not found."})
		return
	}
	switch op {
	case "DescribeStreamSummary":
		f.answer(w, 200, map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": "words", "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/words", "StreamStatus": "ACTIVE", "OpenShardCount": 1}})
	case "ListShards":
		f.answer(w, 200, map[string]any{"Shards": []any{map[string]any{
			"ShardId":             "shardId-000000000000",
			"HashKeyRange":        map[string]string{"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"},
			"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "1"},
		}}})
	case "GetShardIterator":
		// What Kinesis answers to a sequence number of another shard.
		f.answer(w, 400, map[string]string{"__type": "InvalidArgumentException",
			"message": "Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000"})
	case "PutRecords":
		f.mu.Lock()
		f.puts++
		n := f.puts
		if f.accept >= 0 && n > f.accept {
			f.mu.Unlock()
			if n == f.accept+1 {
				close(f.stuck)
				if !f.hang {
					// The endpoint goes away: this call's connection
					// drops, and new ones are refused.
					go func() { f.srv.Listener.Close(); f.srv.CloseClientConnections() }()
				}
			}
			<-r.Context().Done()
			return
		}
		var res []map[string]string
		for i, rec := range in.Records {
			f.lines = append(f.lines, string(rec.Data))
			res = append(res, map[string]string{"SequenceNumber": fmt.Sprint(n*1000 + i), "ShardId": "shardId-000000000000"})
		}
		f.mu.Unlock()
		f.answer(w, 200, map[string]any{"FailedRecordCount": 0, "Records": res})
	default:
		f.answer(w, 400, map[string]string{"__type": "InvalidAction", "message": "not faked: " + op})
	}
}

// totals counts the numbers 0–9 in the lines the fake accepted.
func (f *fakeKinesis) totals() (lines int, totals [10]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.lines {
		for _, b := range []byte(l) {
			if b >= '0' && b <= '9' {
				totals[b-'0']++
			}
		}
	}
	return len(f.lines), totals
}

// printedTotals reads produce's "sent N lines" and its totals.
func printedTotals(t *testing.T, out string) (lines int, totals [10]int64) {
	t.Helper()
	if _, err := fmt.Sscanf(out, "sent %d lines", &lines); err != nil {
		t.Fatalf("produce printed %q: no 'sent N lines'", out)
	}
	parts := strings.SplitN(out, "totals of the numbers sent:\n", 2)
	if len(parts) != 2 {
		t.Fatalf("produce printed no totals:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(parts[1]), "\n") {
		var n int
		var c int64
		if _, err := fmt.Sscan(line, &n, &c); err != nil || n < 0 || n > 9 {
			t.Fatalf("totals line %q", line)
		}
		totals[n] = c
	}
	return lines, totals
}

// mainResult is one in-process run of Main.
type mainResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runMain runs Main and fails the test if it does not return within limit
// (the old produce hung for ever on a dead endpoint).
func runMain(t *testing.T, limit time.Duration, args []string, vars map[string]string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- Main(args, env(vars), &stdout, &stderr) }()
	select {
	case code := <-done:
		return mainResult{code, stdout.String(), stderr.String(), time.Since(start)}
	case <-time.After(limit):
		t.Fatalf("poller %q did not return within %s", args, limit)
	}
	return mainResult{}
}

func oneLine(t *testing.T, what, s string) string {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s: stderr = %q, want exactly one line", what, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// TestProduceDeadEndpoint: produce against an endpoint that does not
// answer fails at once, with exit 1 and the very line `run` prints.
func TestProduceDeadEndpoint(t *testing.T) {
	awsEnv(t)
	dead := testwait.RefusedEndpoint(t)
	vars := map[string]string{"SHARDLINE_STREAM_NAME": "words", "SHARDLINE_KINESIS_ENDPOINT": dead}
	prod := runMain(t, 10*time.Second, []string{"produce", "-count", "100"}, vars)
	if prod.code != 1 {
		t.Fatalf("produce exit %d, want 1; stderr %q", prod.code, prod.stderr)
	}
	if prod.took > 5*time.Second {
		t.Errorf("produce took %s to fail, want a few seconds at most", prod.took)
	}
	got := oneLine(t, "produce", prod.stderr)
	want := "poller: cannot start: stream words: endpoint " + dead + " does not answer (connect: connection refused)"
	if got != want {
		t.Errorf("produce said\n %s\nwant\n %s", got, want)
	}
	if prod.stdout != "" {
		t.Errorf("produce printed totals of numbers never sent:\n%s", prod.stdout)
	}
	vars["SHARDLINE_DYNAMODB_ENDPOINT"] = testwait.RefusedEndpoint(t)
	r := runMain(t, time.Minute, []string{"run", "-app-name", "words-app", "-handler", "print"}, vars)
	if line := oneLine(t, "run", r.stderr); r.code != 1 || line != want {
		t.Errorf("run: exit %d, %q; want exit 1 and the line produce printed", r.code, line)
	}
}

// TestProduceEndpointDies: when the endpoint goes away while producing,
// produce gives up within seconds with exit 1, and its totals count only
// the lines Kinesis accepted.
func TestProduceEndpointDies(t *testing.T) {
	awsEnv(t)
	defer func(d time.Duration) { putGiveUp = d }(putGiveUp)
	putGiveUp = 700 * time.Millisecond
	f := newFakeKinesis(t, 3, false)
	vars := map[string]string{"SHARDLINE_STREAM_NAME": "words", "SHARDLINE_KINESIS_ENDPOINT": f.srv.URL}
	res := runMain(t, 20*time.Second, []string{"produce", "-rate", "200", "-numbers", "4"}, vars)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "poller: put records: stream words: endpoint "+f.srv.URL+" does not answer") {
		t.Errorf("stderr does not say the endpoint stopped answering:\n%s", res.stderr)
	}
	checkTotals(t, f, res.stdout)
}

// TestProduceInterrupted: on the first signal, produce stops; a call the
// endpoint never answers is not counted: the totals are those of the lines
// Kinesis accepted, not of every line made.
func TestProduceInterrupted(t *testing.T) {
	awsEnv(t)
	defer func(d time.Duration) { putGrace = d }(putGrace)
	putGrace = 200 * time.Millisecond
	f := newFakeKinesis(t, 3, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"produce", "-rate", "200", "-numbers", "4", "-stream-name", "words", "-kinesis-endpoint", f.srv.URL}, env(nil), &stdout, &stderr)
	}()
	select {
	case <-f.stuck:
	case <-time.After(30 * time.Second):
		t.Fatal("produce never reached its fourth PutRecords call")
	}
	cancel() // the first SIGINT
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("produce after an interrupt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("produce did not stop within 10s of the interrupt")
	}
	checkTotals(t, f, stdout.String())
	if !strings.Contains(stderr.String(), "lines not accepted by Kinesis, not counted") {
		t.Errorf("stderr does not say that lines were left out:\n%s", stderr.String())
	}
}

func checkTotals(t *testing.T, f *fakeKinesis, stdout string) {
	t.Helper()
	wantLines, want := f.totals()
	if wantLines == 0 {
		t.Fatal("the fake accepted nothing: the test tests nothing")
	}
	lines, got := printedTotals(t, stdout)
	if lines != wantLines || got != want {
		t.Errorf("produce printed %d lines with totals %v; Kinesis accepted %d lines with totals %v", lines, got, wantLines, want)
	}
}

// TestQuickFailures: status and reset answer as fast as run does when an
// endpoint does not answer (few attempts for their one-shot calls), with
// one line and exit 1; an endpoint that answers as another service, and
// missing credentials, get a line saying so.
func TestQuickFailures(t *testing.T) {
	awsEnv(t)
	f := newFakeKinesis(t, -1, false)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>hello</html>") }))
	defer plain.Close()
	deadK, deadD := testwait.RefusedEndpoint(t), testwait.RefusedEndpoint(t)
	base := map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words"}
	tests := []struct {
		name      string
		args      []string
		kin, ddb  string
		want      string
		noCreds   bool
		fastLimit time.Duration
	}{
		{"status, dead Kinesis", []string{"status"}, deadK, deadD, "stream words: endpoint " + deadK + " does not answer (connect: connection refused)", false, 2 * time.Second},
		{"status, dead DynamoDB", []string{"status"}, f.srv.URL, deadD, "lease table words-app: endpoint " + deadD + " does not answer (connect: connection refused)", false, 2 * time.Second},
		{"reset, dead Kinesis", []string{"reset", "-to", "LATEST"}, deadK, deadD, "stream words: endpoint " + deadK + " does not answer", false, 2 * time.Second},
		{"reset, dead DynamoDB", []string{"reset", "-to", "LATEST"}, f.srv.URL, deadD, "lease table words-app: endpoint " + deadD + " does not answer", false, 2 * time.Second},
		{"reset, missing stream", []string{"reset", "-to", "LATEST", "-stream-name", "nope"}, f.srv.URL, deadD, "stream nope: does not exist: Stream nope under account 000000000000 not found.", false, 2 * time.Second},
		{"run, a web server as Kinesis", []string{"run", "-handler", "print"}, plain.URL, deadD, "cannot start: stream words: endpoint " + plain.URL + " does not answer as Kinesis: its answer to DescribeStreamSummary (HTTP 200) is not a Kinesis answer", false, 2 * time.Second},
		{"status, a web server as DynamoDB", []string{"status"}, f.srv.URL, plain.URL, "lease table words-app: endpoint " + plain.URL + " does not answer as DynamoDB: its answer to Scan (HTTP 200)", false, 2 * time.Second},
		{"run, no credentials", []string{"run", "-handler", "print"}, deadK, deadD, "cannot start: stream words: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE", true, 2 * time.Second},
		{"status, no credentials", []string{"status"}, deadK, deadD, "stream words: no AWS credentials found", true, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noCreds {
				t.Setenv("AWS_ACCESS_KEY_ID", "")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "")
				t.Setenv("AWS_PROFILE", "")
			}
			vars := map[string]string{"SHARDLINE_KINESIS_ENDPOINT": tt.kin, "SHARDLINE_DYNAMODB_ENDPOINT": tt.ddb}
			for k, v := range base {
				vars[k] = v
			}
			res := runMain(t, time.Minute, tt.args, vars)
			if res.code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", res.code, res.stderr)
			}
			line := oneLine(t, tt.name, res.stderr)
			if !strings.Contains(line, tt.want) {
				t.Errorf("stderr\n %s\nwant it to contain\n %s", line, tt.want)
			}
			if res.took > tt.fastLimit {
				t.Errorf("took %s, want under %s", res.took.Round(time.Millisecond), tt.fastLimit)
			}
		})
	}
}

// TestResetSequenceOfAnotherShard: Kinesis refuses an iterator at a
// sequence number of another shard; reset says so in one line and writes
// nothing. (kinesis-mock's answer, ResourceNotFound, is in the e2e test.)
func TestResetSequenceOfAnotherShard(t *testing.T) {
	f := newFakeKinesis(t, -1, false)
	awsEnv(t)
	err := checkSequence(context.Background(), kinesisClient(t, f.srv.URL), "words", "shardId-000000000000", "49680706845043761013622578904273917497348047679051005970")
	want := "sequence number 49680706845043761013622578904273917497348047679051005970 is not in shard shardId-000000000000 of stream words (Kinesis: Invalid StartingSequenceNumber."
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("checkSequence = %v, want %q…", err, want)
	}
}

// TestBadSettingsBeforeAnyCall: settings that cannot work are refused
// before any AWS call (the endpoints here would fail differently): exit 2,
// one line naming the setting and what is allowed.
func TestBadSettingsBeforeAnyCall(t *testing.T) {
	awsEnv(t)
	dead := testwait.RefusedEndpoint(t)
	base := map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words", "SHARDLINE_KINESIS_ENDPOINT": dead, "SHARDLINE_DYNAMODB_ENDPOINT": dead}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"initial timestamp in the future", []string{"run", "-handler", "print", "-initial-position", "AT_TIMESTAMP", "-initial-timestamp", future}, nil, `-initial-timestamp "` + future + `" is in the future`},
		{"duration without a unit", []string{"run", "-handler", "print", "-checkpoint-interval", "5"}, nil, `-checkpoint-interval "5": allowed a duration such as 5s`},
		{"bad integer variable", []string{"run", "-handler", "print"}, map[string]string{"SHARDLINE_BATCH_SIZE": "x"}, `SHARDLINE_BATCH_SIZE="x": allowed an integer such as 100`},
		{"bad boolean variable", []string{"status"}, map[string]string{"SHARDLINE_JSON": "yes"}, `SHARDLINE_JSON="yes": allowed true or false`},
		{"reset to a sequence number without a shard", []string{"reset", "-to", "4968070684502146026842404828112271037251848228414737613"}, nil, "-to 4968070684502146026842404828112271037251848228414737613 needs -shard (SHARDLINE_SHARD)"},
		{"reset to AT_TIMESTAMP without a time", []string{"reset", "-to", "AT_TIMESTAMP"}, nil, "-to AT_TIMESTAMP needs -timestamp (SHARDLINE_TIMESTAMP)"},
		{"reset to a time in the future", []string{"reset", "-to", "AT_TIMESTAMP", "-timestamp", future}, nil, `-timestamp "` + future + `" is in the future`},
		{"reset to a time that is not RFC 3339", []string{"reset", "-to", "AT_TIMESTAMP", "-timestamp", "yesterday"}, nil, `-timestamp "yesterday": allowed an RFC 3339 time`},
		{"reset -timestamp without AT_TIMESTAMP", []string{"reset", "-to", "LATEST", "-timestamp", "2026-01-02T15:04:05Z"}, nil, `-timestamp "2026-01-02T15:04:05Z" is only allowed with -to AT_TIMESTAMP`},
		{"produce rate", []string{"produce", "-rate", "lots"}, nil, `-rate "lots": allowed an integer such as 1000`},
		{"unknown command", []string{"bogus"}, nil, `unknown command "bogus": allowed run, produce, status, replay, reset, resume, redrive, version`},
		{"resume without a shard", []string{"resume"}, nil, "-shard (SHARDLINE_SHARD) or -all is required"},
		{"resume shard and all", []string{"resume", "-shard", "s", "-all"}, nil, `-shard "s" and -all: allowed one of them`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			res := runMain(t, 10*time.Second, tt.args, vars)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", res.code, res.stderr)
			}
			if line := oneLine(t, tt.name, res.stderr); !strings.Contains(line, tt.want) {
				t.Errorf("stderr\n %s\nwant it to contain\n %s", line, tt.want)
			}
		})
	}
}

// TestNoRegion: no region anywhere is a bad setting (exit 2) naming the
// ways to give one.
func TestNoRegion(t *testing.T) {
	awsEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	res := runMain(t, 10*time.Second, []string{"status"}, map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words"})
	if res.code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", res.code, res.stderr)
	}
	line := oneLine(t, "status", res.stderr)
	for _, want := range []string{"-region", "SHARDLINE_REGION", "AWS_REGION"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q does not name %s", line, want)
		}
	}
}

// TestBareVariablesIgnored: FORCE=1 once let reset move a live poller's
// leases, JSON=yes broke status and COUNT=3 cut produce short. Only
// SHARDLINE_ variables are read.
func TestBareVariablesIgnored(t *testing.T) {
	bare := env(map[string]string{"FORCE": "1", "JSON": "yes", "COUNT": "3", "TO": "LATEST", "SHARD": "shardId-000000000001", "RATE": "5",
		"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words"})
	var r resetCmd
	if err := r.parse(New(), []string{"-to", "TRIM_HORIZON"}, bare, io.Discard, time.Now()); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if r.force || r.shard != "" {
		t.Errorf("reset read FORCE or SHARD: force %v, shard %q", r.force, r.shard)
	}
	var s statusCmd
	if err := s.parse(New(), nil, bare, io.Discard); err != nil {
		t.Fatalf("status with JSON=yes: %v", err)
	}
	if s.asJSON {
		t.Error("status read JSON")
	}
	var p produceCmd
	if err := p.parse(New(), nil, bare, io.Discard); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if p.count != 0 || p.rate != 1000 {
		t.Errorf("produce read COUNT or RATE: count %d, rate %d", p.count, p.rate)
	}

	// The SHARDLINE_ names are read.
	prefixed := env(map[string]string{"SHARDLINE_FORCE": "1", "SHARDLINE_JSON": "true", "SHARDLINE_COUNT": "3",
		"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words"})
	r, s, p = resetCmd{}, statusCmd{}, produceCmd{}
	if err := r.parse(New(), []string{"-to", "TRIM_HORIZON"}, prefixed, io.Discard, time.Now()); err != nil || !r.force {
		t.Errorf("reset with SHARDLINE_FORCE=1: force %v, err %v", r.force, err)
	}
	if err := s.parse(New(), nil, prefixed, io.Discard); err != nil || !s.asJSON {
		t.Errorf("status with SHARDLINE_JSON=true: json %v, err %v", s.asJSON, err)
	}
	if err := p.parse(New(), nil, prefixed, io.Discard); err != nil || p.count != 3 {
		t.Errorf("produce with SHARDLINE_COUNT=3: count %d, err %v", p.count, err)
	}
}

func kinesisClient(t *testing.T, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:   awshttp.NewBuildableClient(),
		BaseEndpoint: aws.String(endpoint),
	})
}
