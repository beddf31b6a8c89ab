package shardline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/lease/leasetest"
	"github.com/shardline/shardline/shared/standin/standintest"
)

// TestStatusTableWidth: with long owners, checkpoints, parents and notes
// every line of the table fits 120 columns, long values end or break with
// an ellipsis, and the summary row counts shards, owners, the largest lag
// and parked shards.
func TestStatusTableWidth(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	renewed := now.Add(-1234 * time.Millisecond)
	ts := now.Add(-time.Hour)
	lag := func(ms int64) *int64 { return &ms }
	long := strings.Repeat("x", 200)
	rows := []ShardStatus{
		{ShardID: "shardId-000000000000", State: "open", Owner: "ip-10-0-0-12.eu-west-1.compute.internal-12345-0123abcd",
			Checkpoint: "49680431546846898293091286536262011587232640427413176322", SubSequence: 12345, HasLease: true,
			MillisBehindLatest: lag(86_400_000 * 3), LastRenewal: &renewed, LeaseCounter: 123456789},
		{ShardID: "shardId-000000000001", State: "parked", Parents: []string{"shardId-000000000010", "shardId-000000000011"},
			Checkpoint: "AT_TIMESTAMP", Timestamp: &ts, HasLease: true,
			Parked:            &lease.Park{Reason: "shard shardId-000000000001: gave up on records 4968…5970 after 4 attempts (retry attempts exhausted) and no on-failure destination is set: " + long, Count: 12, Until: now.Add(90 * time.Second)},
			DroppedOutOfRange: 99999, Unreadable: long},
		{ShardID: "shardId-000000000002" + long, State: "gone", Parents: []string{long, long}, Owner: long, Checkpoint: long, HasLease: true,
			MillisBehindLatest: lag(500), LastRenewal: &ts},
		{ShardID: "shardId-000000000003", State: "open"},
	}
	rates := map[string]float64{"shardId-000000000000": 123456789.4, "shardId-000000000001": 0}
	for _, withRates := range []map[string]float64{nil, rates} {
		var out bytes.Buffer
		printStatus(&out, rows, withRates, now)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != len(rows)+3 {
			t.Fatalf("%d lines, want a header, %d rows, one note and a summary:\n%s", len(lines), len(rows), out.String())
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > statusWidth {
				t.Errorf("line of %d columns, want at most %d:\n%s", n, statusWidth, l)
			}
		}
		if testing.Verbose() {
			t.Logf("\n%s", out.String())
		}
		note := lines[3]
		if !strings.HasPrefix(note, notePrefix+"PARKED x12, retry in 1m30s: shard shardId-000000000001: gave up") || !strings.HasSuffix(note, "…") {
			t.Errorf("the parked row's note line: %q", note)
		}
		if !strings.Contains(lines[1], "ip-10-0-0-…45-0123abcd") || !strings.Contains(lines[1], "49680431546…76322/12345") {
			t.Errorf("row 0 does not cut its owner and checkpoint in the middle: %s", lines[1])
		}
		if !strings.Contains(lines[4], "shardId-00000000000…") || strings.Count(lines[4], "…") != 4 {
			t.Errorf("the row of long values does not cut each: %s", lines[4])
		}
		if !strings.Contains(lines[2], " 10,11 ") {
			t.Errorf("parents not by number: %s", lines[2])
		}
		wantSum := "4 shards | 2 owners | max lag 3d0h | 1 parked"
		if withRates != nil {
			wantSum += " | 123456789 records/s"
			if !strings.Contains(lines[0], " RATE ") || !strings.Contains(lines[1], " 123.5M/s ") {
				t.Errorf("RATE column missing or not cut:\n%s", out.String())
			}
		}
		if got := lines[len(lines)-1]; got != wantSum {
			t.Errorf("summary row %q, want %q", got, wantSum)
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		f       func(string, int) string
		in      string
		n       int
		want    string
		comment string
	}{
		{cutEnd, "short", 10, "short", "fits"},
		{cutEnd, "a long note here", 8, "a long …", "end"},
		{cutMiddle, "49680431546846898293091286536262011587232640427413176322", 16, "4968043…13176322", "middle"},
		{cutMiddle, "héllo-wörld", 7, "hél…rld", "runes"},
	}
	for _, tt := range tests {
		if got := tt.f(tt.in, tt.n); got != tt.want || utf8.RuneCountInString(got) > tt.n {
			t.Errorf("%s: cut(%q, %d) = %q, want %q", tt.comment, tt.in, tt.n, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 850 * time.Millisecond: "0.8s", 1234 * time.Millisecond: "1.2s",
		42 * time.Second: "42s", 185 * time.Second: "3m5s", 2*time.Hour + 4*time.Minute: "2h4m", 74 * time.Hour: "3d2h", -time.Second: "0s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := shortIDs([]string{"shardId-000000000004", "shardId-000000000000", "other"}); got != "4,0,other" {
		t.Errorf("shortIDs = %q", got)
	}
}

// TestRateMeter: a shard's rate is the change of its handled count over
// the time between two renewals; it stands between renewals and goes
// away with its owner.
func TestRateMeter(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	row := func(owner string, handled int64, renewed time.Time) []ShardStatus {
		return []ShardStatus{{ShardID: "s", Owner: owner, RecordsHandled: handled, LastRenewal: &renewed}}
	}
	var m rateMeter
	steps := []struct {
		rows []ShardStatus
		want float64
		ok   bool
	}{
		{row("w", 100, t0), 0, false},                        // first sample
		{row("w", 100, t0), 0, false},                        // no renewal yet
		{row("w", 600, t0.Add(2*time.Second)), 250, true},    // 500 in 2 s
		{row("w", 600, t0.Add(2*time.Second)), 250, true},    // stands
		{row("w", 600, t0.Add(4*time.Second)), 0, true},      // idle
		{row("", 600, t0.Add(4*time.Second)), 0, false},      // released
		{row("w2", 700, t0.Add(5*time.Second)), 0, false},    // a new owner: first sample again
		{row("w2", 1700, t0.Add(6*time.Second)), 1000, true}, // 1000 in 1 s
	}
	for i, s := range steps {
		m.observe(s.rows)
		got, ok := m.rates["s"]
		if ok != s.ok || got != s.want {
			t.Errorf("step %d: rate %v (%v), want %v (%v)", i, got, ok, s.want, s.ok)
		}
	}
}

// TestStatusUnowned: open shards with a lease and no owner are counted in
// the summary row; closed, parked and owned ones are not.
func TestStatusUnowned(t *testing.T) {
	rows := []ShardStatus{
		{ShardID: "shardId-000000000000", State: "open", HasLease: true, Owner: "a"},
		{ShardID: "shardId-000000000001", State: "open", HasLease: true},
		{ShardID: "shardId-000000000002", State: "open", HasLease: true},
		{ShardID: "shardId-000000000003", State: "closed", HasLease: true},
		{ShardID: "shardId-000000000004", State: "open"}, // no lease yet
	}
	var out bytes.Buffer
	printStatus(&out, rows, nil, time.Now())
	if !strings.Contains(out.String(), "| 0 parked | 2 unowned\n") {
		t.Errorf("summary row:\n%s\nwant 2 unowned", out.String())
	}
	out.Reset()
	printStatus(&out, rows[:1], nil, time.Now())
	if strings.Contains(out.String(), "unowned") {
		t.Errorf("unowned shown with none:\n%s", out.String())
	}
}

// TestStatusReadColumn (issue 18): when an owner reads with enhanced
// fan-out, status shows each shard's mode in a READ column, within the
// width.
func TestStatusReadColumn(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 200)
	rows := []ShardStatus{
		{ShardID: "shardId-000000000000", State: "open", Owner: long, Checkpoint: long, HasLease: true, Reader: "fan-out"},
		{ShardID: "shardId-000000000001", State: "open", Owner: "w2", Checkpoint: "123", HasLease: true, Reader: "polling"},
		{ShardID: "shardId-000000000002", State: "open"},
	}
	for _, rates := range []map[string]float64{nil, {"shardId-000000000000": 123456789.4}} {
		var out bytes.Buffer
		printStatus(&out, rows, rates, now)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > statusWidth {
				t.Errorf("line of %d columns, want at most %d:\n%s", n, statusWidth, l)
			}
		}
		if !strings.Contains(lines[0], "READ") || !strings.Contains(lines[1], "fan-out") || !strings.Contains(lines[2], "poll") {
			t.Errorf("no READ column with each shard's mode:\n%s", out.String())
		}
	}
	var out bytes.Buffer
	printStatus(&out, rows[1:], nil, now)
	if strings.Contains(out.String(), "READ") {
		t.Errorf("a READ column with no fan-out owner:\n%s", out.String())
	}
}

// TestStatusKCL35Table (issue 19): in a lease table KCL 3.5.1 shares with
// its leader lock, migration states and worker metrics, and a
// multi-stream application's lease, status lists the stream's shards
// alone, none unreadable; a lease mid-handoff shows its holder
// (checkpointOwner) as the owner and the next owner under it.
func TestStatusKCL35Table(t *testing.T) {
	k, d := standintest.Both(t)
	awsEnv(t)
	ctx := context.Background()
	app, streamName := standintest.UniqueName(t), standintest.NewStream(t, k.Endpoint, 2)
	db := standintest.DynamoDBClient(d.Endpoint)
	if err := lease.NewTable(db, app).Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	const holder, next = "ip-10-0-0-1.ec2.internal:1a2b3c", "ip-10-0-0-2.ec2.internal:4d5e6f"
	items := leasetest.KCL351Entities(holder, holder, next)
	items["multi"] = leasetest.KCLLease{Key: "123456789012:orders:1767366245:shardId-000000000000", StreamName: "123456789012:orders:1767366245",
		ShardID: "shardId-000000000000", Counter: 3, Checkpoint: "TRIM_HORIZON"}.Item()
	items["0"] = leasetest.KCLLease{Key: "shardId-000000000000", Owner: next, CheckpointOwner: holder, Counter: 5, Checkpoint: "TRIM_HORIZON"}.Item()
	items["1"] = leasetest.KCLLease{Key: "shardId-000000000001", Owner: next, Counter: 5, Checkpoint: "TRIM_HORIZON", ThroughputKBps: "2.5"}.Item()
	for _, item := range items {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(app), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"SHARDLINE_APP_NAME": app, "SHARDLINE_STREAM_NAME": streamName,
		"SHARDLINE_KINESIS_ENDPOINT": k.Endpoint, "SHARDLINE_DYNAMODB_ENDPOINT": d.Endpoint}
	res := runMain(t, time.Minute, []string{"status", "-json"}, vars)
	if res.code != 0 {
		t.Fatalf("status -json: exit %d\n%s", res.code, res.stderr)
	}
	var rows []ShardStatus
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil {
		t.Fatalf("status -json: %v\n%s", err, res.stdout)
	}
	if len(rows) != 2 || rows[0].ShardID != "shardId-000000000000" || rows[1].ShardID != "shardId-000000000001" {
		t.Fatalf("status rows %+v, want the two shards alone", rows)
	}
	for _, r := range rows {
		if r.Unreadable != "" || !r.HasLease {
			t.Errorf("row %+v: want a readable lease", r)
		}
	}
	if rows[0].Owner != holder || rows[0].HandoffTo != next || rows[1].Owner != next || rows[1].HandoffTo != "" {
		t.Errorf("owners %q (handoff to %q) and %q (%q), want %q handing off to %q, and %q", rows[0].Owner, rows[0].HandoffTo,
			rows[1].Owner, rows[1].HandoffTo, holder, next, next)
	}
	res = runMain(t, time.Minute, []string{"status"}, vars)
	if res.code != 0 {
		t.Fatalf("status: exit %d\n%s", res.code, res.stderr)
	}
	for _, s := range []string{"Leader", "Migration", "orders", "UNREADABLE"} {
		if strings.Contains(res.stdout, s) {
			t.Errorf("status shows %q:\n%s", s, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "HANDOFF to "+next) {
		t.Errorf("status does not show the handoff:\n%s", res.stdout)
	}
}

// TestStatusSeveralStreams (issue 19): with a list of streams, status
// groups the shards by stream, with each stream's leases (keyed
// account:stream:creationEpoch:shardId), and lists a former stream's
// leases apart.
func TestStatusSeveralStreams(t *testing.T) {
	k, d := standintest.Both(t)
	awsEnv(t)
	ctx := context.Background()
	app := standintest.UniqueName(t)
	s1, s2 := standintest.NewStream(t, k.Endpoint, 2), standintest.NewStream(t, k.Endpoint, 1)
	kc := standintest.KinesisClient(k.Endpoint)
	db := standintest.DynamoDBClient(d.Endpoint)
	table := lease.NewTable(db, app).WithMultiStream()
	if err := table.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	id1, err := coordinator.StreamID(ctx, kc, s1)
	if err != nil {
		t.Fatal(err)
	}
	items := []map[string]dtypes.AttributeValue{
		leasetest.KCLLease{Key: id1 + ":shardId-000000000001", StreamName: id1, ShardID: "shardId-000000000001", Owner: "w1", Counter: 3, Checkpoint: "TRIM_HORIZON"}.Item(),
		leasetest.KCLLease{Key: "123456789012:gone:1767366245:shardId-000000000000", StreamName: "123456789012:gone:1767366245", ShardID: "shardId-000000000000", Counter: 3, Checkpoint: "TRIM_HORIZON"}.Item(),
	}
	for _, item := range items {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(app), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"SHARDLINE_APP_NAME": app, "SHARDLINE_STREAM_NAME": s1 + "," + s2,
		"SHARDLINE_KINESIS_ENDPOINT": k.Endpoint, "SHARDLINE_DYNAMODB_ENDPOINT": d.Endpoint}
	res := runMain(t, time.Minute, []string{"status", "-json"}, vars)
	if res.code != 0 {
		t.Fatalf("status -json: exit %d\n%s", res.code, res.stderr)
	}
	var rows []ShardStatus
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil {
		t.Fatalf("status -json: %v\n%s", err, res.stdout)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s/%s/%s/%v", r.Stream, r.ShardID, r.Owner, r.HasLease))
	}
	want := []string{s1 + "/shardId-000000000000//false", s1 + "/shardId-000000000001/w1/true", s2 + "/shardId-000000000000//false",
		"123456789012:gone:1767366245 (not in -stream-name)/shardId-000000000000//true"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows\n %q\nwant\n %q", got, want)
	}
	res = runMain(t, time.Minute, []string{"status"}, vars)
	if res.code != 0 || !strings.Contains(res.stdout, "stream "+s1+"\n") || !strings.Contains(res.stdout, "stream "+s2+"\n") {
		t.Fatalf("status: exit %d, want a table per stream:\n%s%s", res.code, res.stdout, res.stderr)
	}
}
