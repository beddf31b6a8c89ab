package handlers

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/golang/protobuf/proto"

	"github.com/shardline/shardline/shared/stream"
)

var update = flag.Bool("update", false, "rewrite the generated files under events/ (kinesis-aggregated.json)")

// eventsDir is the repository's events/ folder, used by sam local invoke -e.
const eventsDir = "../../events"

// kplMagic starts every KPL aggregated record.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// kinesisJSONRecords are the records of events/kinesis.json (AWS's
// documented example event, with word lines as data).
var kinesisJSONRecords = []stream.Record{
	{
		ShardID:                     "shardId-000000000006",
		SequenceNumber:              "49590338271490256608559692538361571095921575989136588898",
		PartitionKey:                "partitionKey-0",
		Data:                        []byte("3 7 1 9"),
		ApproximateArrivalTimestamp: time.UnixMilli(1545084650987),
	},
	{
		ShardID:                     "shardId-000000000006",
		SequenceNumber:              "49590338271490256608559692540925702759324208523137515618",
		PartitionKey:                "partitionKey-1",
		Data:                        []byte("9 3 3 5"),
		ApproximateArrivalTimestamp: time.UnixMilli(1545084711166),
	},
}

// aggregate is one Kinesis record of events/kinesis-aggregated.json: a KPL
// aggregate of word lines. User record i has partition key
// keys[i%len(keys)]; the Kinesis record's own partition key is keys[0], as
// the KPL does.
type aggregate struct {
	seq     string
	arrival time.Time
	keys    []string
	lines   []string
}

var aggregatedJSONRecords = []aggregate{
	{
		seq:     "49590338271490256608559692541018933445720316373627388002",
		arrival: time.UnixMilli(1545084712345),
		keys:    []string{"partitionKey-2", "partitionKey-3"},
		lines:   []string{"3 7 1 9", "9 3 3 5", "0 2 4 6"},
	},
	{
		seq:     "49590338271490256608559692541018933445720316373627388018",
		arrival: time.UnixMilli(1545084713001),
		keys:    []string{"partitionKey-4"},
		lines:   []string{"8 8 1", "5 5 5 5"},
	},
}

// kplAggregate encodes a as the KPL record format: magic, protobuf
// AggregatedRecord, MD5 of the protobuf.
func kplAggregate(t *testing.T, a aggregate) []byte {
	t.Helper()
	agg := &records.AggregatedRecord{PartitionKeyTable: a.keys}
	for i, line := range a.lines {
		idx := uint64(i % len(a.keys))
		agg.Records = append(agg.Records, &records.Record{PartitionKeyIndex: &idx, Data: []byte(line)})
	}
	pb, err := proto.Marshal(agg)
	if err != nil {
		t.Fatalf("marshal aggregate: %v", err)
	}
	sum := md5.Sum(pb)
	return slices.Concat(kplMagic, pb, sum[:])
}

// Lambda's key order, so that generated files read like the events Lambda
// sends (events.KinesisEventRecord marshals its fields alphabetically).
type lambdaKinesisEvent struct {
	Records []lambdaKinesisRecord `json:"Records"`
}

type lambdaKinesisRecord struct {
	Kinesis struct {
		KinesisSchemaVersion        string  `json:"kinesisSchemaVersion"`
		PartitionKey                string  `json:"partitionKey"`
		SequenceNumber              string  `json:"sequenceNumber"`
		Data                        []byte  `json:"data"`
		ApproximateArrivalTimestamp float64 `json:"approximateArrivalTimestamp"`
	} `json:"kinesis"`
	EventSource       string `json:"eventSource"`
	EventVersion      string `json:"eventVersion"`
	EventID           string `json:"eventID"`
	EventName         string `json:"eventName"`
	InvokeIdentityArn string `json:"invokeIdentityArn"`
	AwsRegion         string `json:"awsRegion"`
	EventSourceArn    string `json:"eventSourceARN"`
}

// aggregatedEventJSON renders events/kinesis-aggregated.json: the event
// Lambda's native trigger sends for aggregatedJSONRecords. Lambda does not
// de-aggregate, so each record is a whole Kinesis record with a plain
// "shardId:seq" eventID and the aggregate as its data.
func aggregatedEventJSON(t *testing.T) []byte {
	t.Helper()
	recs := make([]stream.Record, len(aggregatedJSONRecords))
	for i, a := range aggregatedJSONRecords {
		recs[i] = stream.Record{
			ShardID:                     "shardId-000000000006",
			SequenceNumber:              a.seq,
			PartitionKey:                a.keys[0],
			Data:                        kplAggregate(t, a),
			ApproximateArrivalTimestamp: a.arrival,
		}
	}
	ev := stream.Event(testSource, recs)
	var out lambdaKinesisEvent
	for _, r := range ev.Records {
		var l lambdaKinesisRecord
		l.Kinesis.KinesisSchemaVersion = r.Kinesis.KinesisSchemaVersion
		l.Kinesis.PartitionKey = r.Kinesis.PartitionKey
		l.Kinesis.SequenceNumber = r.Kinesis.SequenceNumber
		l.Kinesis.Data = r.Kinesis.Data
		l.Kinesis.ApproximateArrivalTimestamp = epochSeconds(r.Kinesis.ApproximateArrivalTimestamp.Time)
		l.EventSource, l.EventVersion, l.EventID, l.EventName = r.EventSource, r.EventVersion, r.EventID, r.EventName
		l.InvokeIdentityArn, l.AwsRegion, l.EventSourceArn = r.InvokeIdentityArn, r.AwsRegion, r.EventSourceArn
		out.Records = append(out.Records, l)
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		t.Fatalf("marshal aggregated event: %v", err)
	}
	return append(b, '\n')
}

// TestAggregatedEventFile keeps events/kinesis-aggregated.json reproducible:
// go test ./shared/handlers -run TestAggregatedEventFile -update rewrites it.
func TestAggregatedEventFile(t *testing.T) {
	path := filepath.Join(eventsDir, "kinesis-aggregated.json")
	want := aggregatedEventJSON(t)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale; regenerate it with: go test ./shared/handlers -run TestAggregatedEventFile -update", path)
	}
}

// decodeStrict decodes a JSON file into v, refusing fields v lacks.
func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s as %T: %v", path, v, err)
	}
	if dec.More() {
		t.Fatalf("decode %s: trailing data", path)
	}
}

// normalizeKinesis rounds arrival times to the millisecond Kinesis keeps
// (the float epoch seconds do not round-trip to the nanosecond) and sets
// them in UTC, so that events compare with reflect.DeepEqual.
func normalizeKinesis(ev *events.KinesisEvent) {
	for i := range ev.Records {
		ts := &ev.Records[i].Kinesis.ApproximateArrivalTimestamp
		ts.Time = ts.Round(time.Millisecond).UTC()
	}
}

// TestEventFiles decodes every events/*.json with aws-lambda-go's types and
// checks its values.
func TestEventFiles(t *testing.T) {
	tests := map[string]func(t *testing.T, path string){
		"kinesis.json": func(t *testing.T, path string) {
			var got events.KinesisEvent
			decodeStrict(t, path, &got)
			want := stream.Event(testSource, kinesisJSONRecords)
			normalizeKinesis(&got)
			normalizeKinesis(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded:\n%+v\nwant\n%+v", got, want)
			}
		},
		"kinesis-aggregated.json": func(t *testing.T, path string) {
			var got events.KinesisEvent
			decodeStrict(t, path, &got)
			if len(got.Records) != len(aggregatedJSONRecords) {
				t.Fatalf("got %d records, want %d", len(got.Records), len(aggregatedJSONRecords))
			}
			for i, r := range got.Records {
				a := aggregatedJSONRecords[i]
				env := []struct{ field, got, want string }{
					{"eventID", r.EventID, "shardId-000000000006:" + a.seq},
					{"eventName", r.EventName, "aws:kinesis:record"},
					{"eventSource", r.EventSource, "aws:kinesis"},
					{"eventVersion", r.EventVersion, "1.0"},
					{"eventSourceARN", r.EventSourceArn, testSource.StreamARN},
					{"awsRegion", r.AwsRegion, testSource.Region},
					{"invokeIdentityArn", r.InvokeIdentityArn, testSource.InvokeIdentityARN},
					{"kinesisSchemaVersion", r.Kinesis.KinesisSchemaVersion, "1.0"},
					{"sequenceNumber", r.Kinesis.SequenceNumber, a.seq},
					{"partitionKey", r.Kinesis.PartitionKey, a.keys[0]},
				}
				for _, f := range env {
					if f.got != f.want {
						t.Errorf("record %d %s = %q, want %q", i, f.field, f.got, f.want)
					}
				}
				if got := r.Kinesis.ApproximateArrivalTimestamp.Round(time.Millisecond); !got.Equal(a.arrival) {
					t.Errorf("record %d approximateArrivalTimestamp = %v, want %v", i, got, a.arrival)
				}
				keys, lines := decodeKPL(t, r.Kinesis.Data)
				var wantKeys []string
				for j := range a.lines {
					wantKeys = append(wantKeys, a.keys[j%len(a.keys)])
				}
				if !slices.Equal(keys, wantKeys) || !slices.Equal(lines, a.lines) {
					t.Errorf("record %d user records: keys %q lines %q, want keys %q lines %q", i, keys, lines, wantKeys, a.lines)
				}
			}
		},
		// Not an event: the functions' variables for `sam local invoke
		// --env-vars`, by logical id; functions/poller's TestSettingsFiles
		// checks them against template.yaml.
		"env.json": func(t *testing.T, path string) {
			var got map[string]map[string]string
			decodeStrict(t, path, &got)
			if len(got) == 0 {
				t.Error("no function's variables")
			}
		},
		// The schedule's own event (template.yaml's Input), with runFor:
		// one short poll for a local invoke.
		"poll-once.json": func(t *testing.T, path string) {
			var got struct {
				Shardline string `json:"shardline"`
				RunFor    string `json:"runFor"`
			}
			decodeStrict(t, path, &got)
			if d, err := time.ParseDuration(got.RunFor); got.Shardline != "poll" || err != nil || d <= 0 {
				t.Errorf("decoded %+v: want shardline poll and a positive runFor", got)
			}
		},
		"schedule.json": func(t *testing.T, path string) {
			var got events.EventBridgeEvent
			decodeStrict(t, path, &got)
			want := events.EventBridgeEvent{
				Version:    "0",
				ID:         "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
				DetailType: "Scheduled Event",
				Source:     "aws.events",
				AccountID:  "123456789012",
				Time:       time.Date(2015, 10, 8, 16, 53, 6, 0, time.UTC),
				Region:     "us-east-2",
				Resources:  []string{"arn:aws:events:us-east-2:123456789012:rule/my-scheduled-rule"},
				Detail:     json.RawMessage("{}"),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded:\n%+v\nwant\n%+v", got, want)
			}
		},
	}
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range tests {
		if !slices.Contains(names, name) {
			t.Errorf("events/%s is missing", name)
		}
	}
	for _, name := range names {
		check, ok := tests[name]
		if !ok {
			t.Errorf("events/%s has no decoding test: add it to TestEventFiles", name)
			continue
		}
		t.Run(name, func(t *testing.T) { check(t, filepath.Join(eventsDir, name)) })
	}
}

// decodeKPL checks a KPL aggregate's magic and MD5 and returns its user
// records' partition keys and data.
func decodeKPL(t *testing.T, b []byte) (keys, lines []string) {
	t.Helper()
	if len(b) < len(kplMagic)+md5.Size || !bytes.Equal(b[:len(kplMagic)], kplMagic) {
		t.Fatalf("data %x is not a KPL aggregate", b)
	}
	pb, sum := b[len(kplMagic):len(b)-md5.Size], b[len(b)-md5.Size:]
	if want := md5.Sum(pb); !bytes.Equal(sum, want[:]) {
		t.Fatalf("aggregate MD5 %x, want %x", sum, want)
	}
	var agg records.AggregatedRecord
	if err := proto.Unmarshal(pb, &agg); err != nil {
		t.Fatalf("unmarshal aggregate: %v", err)
	}
	for _, r := range agg.Records {
		keys = append(keys, agg.PartitionKeyTable[r.GetPartitionKeyIndex()])
		lines = append(lines, string(r.Data))
	}
	return keys, lines
}

// TestEventMatchesLambdaShape builds, with stream.Event, the event for the
// records of events/kinesis.json and checks that its JSON is the same
// structure as the file's, key by key: Shardline's events have Lambda's
// byte shape.
//
// One exception: approximateArrivalTimestamp values are compared to the
// millisecond (the precision Kinesis keeps). events.SecondsEpochTime, which
// events.KinesisRecord marshals with, computes float64(UnixNano())/1e9 and
// so renders about a quarter of millisecond timestamps with float noise
// (1545084711.166 becomes 1545084711.1660001, the second record here), where
// Lambda writes the decimal. Both decode to the same millisecond.
func TestEventMatchesLambdaShape(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(eventsDir, "kinesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	ours, err := json.Marshal(stream.Event(testSource, kinesisJSONRecords))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(ours, &got); err != nil {
		t.Fatal(err)
	}
	dropUnshared(got, want, "encryptionType")
	if diffs := jsonDiff("", got, want, roundTimestamps); len(diffs) > 0 {
		t.Errorf("stream.Event JSON differs from events/kinesis.json:\n%s\nours: %s", strings.Join(diffs, "\n"), ours)
	}
}

// dropUnshared deletes key from every record's "kinesis" object of a and b
// where only one of the two has it.
func dropUnshared(a, b map[string]any, key string) {
	ra, _ := a["Records"].([]any)
	rb, _ := b["Records"].([]any)
	for i := range min(len(ra), len(rb)) {
		ka, _ := ra[i].(map[string]any)["kinesis"].(map[string]any)
		kb, _ := rb[i].(map[string]any)["kinesis"].(map[string]any)
		if ka == nil || kb == nil {
			continue
		}
		_, inA := ka[key]
		_, inB := kb[key]
		if inA != inB {
			delete(ka, key)
			delete(kb, key)
		}
	}
}

// roundTimestamps compares approximateArrivalTimestamp numbers to the
// millisecond; see TestEventMatchesLambdaShape.
func roundTimestamps(path string, got, want any) (equal, handled bool) {
	if !strings.HasSuffix(path, ".approximateArrivalTimestamp") {
		return false, false
	}
	g, okG := got.(float64)
	w, okW := want.(float64)
	if !okG || !okW {
		return false, true
	}
	ms := func(f float64) int64 { return int64(math.Round(f * 1000)) }
	return ms(g) == ms(w), true
}

// jsonDiff lists where two decoded JSON values differ, by path. leaf, if
// not nil, may decide the comparison of a non-container value at a path.
func jsonDiff(path string, got, want any, leaf func(path string, got, want any) (equal, handled bool)) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %#v, want an object", path, got)}
		}
		keys := make(map[string]bool)
		for k := range g {
			keys[k] = true
		}
		for k := range w {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var diffs []string
		for _, k := range sorted {
			gv, inG := g[k]
			wv, inW := w[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %#v", path, k, wv))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: got %#v, want no such key", path, k, gv))
			default:
				diffs = append(diffs, jsonDiff(path+"."+k, gv, wv, leaf)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %#v, want %d elements", path, got, len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, jsonDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], leaf)...)
		}
		return diffs
	default:
		if leaf != nil {
			if equal, handled := leaf(path, got, want); handled {
				if !equal {
					return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
				}
				return nil
			}
		}
		if !reflect.DeepEqual(got, want) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
		}
		return nil
	}
}

// TestHandlersOnEventFiles runs the built-ins on events/kinesis.json as
// sam local invoke would hand it to a function.
func TestHandlersOnEventFiles(t *testing.T) {
	var ev events.KinesisEvent
	decodeStrict(t, filepath.Join(eventsDir, "kinesis.json"), &ev)

	var out bytes.Buffer
	if _, err := NewPrinter(Options{Out: &out}).Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"partitionKey-0","approximateArrivalTimestamp":1545084650.987,"data":"3 7 1 9"}
{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692540925702759324208523137515618","subSequenceNumber":0,"partitionKey":"partitionKey-1","approximateArrivalTimestamp":1545084711.166,"data":"9 3 3 5"}
`
	if got := out.String(); got != want {
		t.Errorf("print output:\n%s\nwant\n%s", got, want)
	}

	w, err := NewWordCount(Options{Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	wantTotals := map[string]int64{"1": 1, "3": 3, "5": 1, "7": 1, "9": 2}
	if got := w.Totals(); !reflect.DeepEqual(got, wantTotals) {
		t.Errorf("wordcount totals = %v, want %v", got, wantTotals)
	}
}
