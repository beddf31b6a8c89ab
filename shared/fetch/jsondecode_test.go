package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithytime "github.com/aws/smithy-go/time"
)

// jsonAnswers are GetRecords answers in JSON as servers write them: AWS
// (compact, times with exponents), moto_server (spaces, an iterator ending
// in an escaped newline, no EncryptionType), and forms the protocol
// allows (escapes, nulls, unknown fields, a shard's end).
func jsonAnswers() map[string]string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b64 := base64.StdEncoding.EncodeToString
	return map[string]string{
		"aws": `{"MillisBehindLatest":1500,"NextShardIterator":"AAAAAAAAAAG+/=","Records":[` +
			`{"ApproximateArrivalTimestamp":1.796051652086E9,"Data":"` + b64([]byte{0, 1, 2, 0xff}) + `","EncryptionType":"KMS","PartitionKey":"pk-é","SequenceNumber":"49590338271490256608559692538361571095921575989136588801"},` +
			`{"ApproximateArrivalTimestamp":1.796051652999E9,"Data":"","PartitionKey":"k2","SequenceNumber":"49590338271490256608559692538361571095921575989136588802"}]}`,
		"moto": `{"Records": [{"SequenceNumber": "1", "ApproximateArrivalTimestamp": 1796574904.434, "Data": "aGVsbG8=", "PartitionKey": "k"}], ` +
			`"NextShardIterator": "czpzaGFyZElkLTAwMDAwMDAwMDAwMDox\n", "MillisBehindLatest": 0}`,
		"escapes and unicode": `{"Records":[{"SequenceNumber":"1","PartitionKey":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00\ud800x\udc00","Data":"` +
			b64(all) + `","EncryptionType":"SOMETHING_NEW","Unknown":{"a":[1,-2.5e3,true,false,null,"\u0041",{}],"b":[]}}],"NextShardIterator":"it\u002fx"}`,
		"escaped base64": `{"Records":[{"SequenceNumber":"2","Data":"aGVs\/G8=","PartitionKey":"p"}],"NextShardIterator":"n"}`,
		"nulls": `{"Records":[{"SequenceNumber":"3","Data":null,"PartitionKey":null,"ApproximateArrivalTimestamp":null,"EncryptionType":null}],` +
			`"NextShardIterator":"n","MillisBehindLatest":null,"ChildShards":null}`,
		"white space": " \t\r\n{ \"Records\" : [ { \"SequenceNumber\" : \"4\" , \"Data\" : \"eA==\" } , {\"SequenceNumber\":\"5\"} ] , \"NextShardIterator\" : \"n\" } \n",
		"shard end": `{"Records":[],"MillisBehindLatest":0,"ChildShards":[` +
			`{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000","shardId-000000000001"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"}},` +
			`{"ShardId":"shardId-000000000003","ParentShards":["shardId-000000000000"],"HashKeyRange":null,"Other":1}]}`,
		"records null": `{"Records":null,"NextShardIterator":"n"}`,
		"integer times and big data": `{"Records":[{"SequenceNumber":"6","ApproximateArrivalTimestamp":1796051652,"Data":"` +
			b64(bytes.Repeat([]byte("big "), 300_000)) + `"},{"SequenceNumber":"7","ApproximateArrivalTimestamp":-1.5,"Data":"QQ=="}],"NextShardIterator":"n","MillisBehindLatest":-1}`,
		"times beyond int64 milliseconds": `{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1e17},{"SequenceNumber":"2","ApproximateArrivalTimestamp":-1e17},` +
			`{"SequenceNumber":"3","ApproximateArrivalTimestamp":0.0009},{"SequenceNumber":"4","ApproximateArrivalTimestamp":-0.0009}]}`,
		"duplicate keys": `{"Records":[{"SequenceNumber":"x"}],"NextShardIterator":"a","Records":[{"SequenceNumber":"8","SequenceNumber":"9","Data":"eA==","Data":"eXk="}],"NextShardIterator":"b"}`,
	}
}

// The JSON decoder reads every answer as the SDK reads it: records,
// times, iterators and child shards, byte for byte.
func TestDecodeJSONAgreesWithSDK(t *testing.T) {
	for name, body := range jsonAnswers() {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.Write([]byte(body))
			}))
			defer srv.Close()
			sdk := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL)})
			want, err := sdk.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
			if err != nil {
				t.Fatalf("the SDK: %v", err)
			}
			buf := []byte(body)
			got, err := decodeGetRecordsJSON(buf)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffOutputs(got, want); d != "" {
				t.Fatal(d)
			}
			// The records do not share the answer: it can be let go.
			clear(buf)
			if d := diffOutputs(got, want); d != "" {
				t.Fatalf("after the answer's buffer changed: %s", d)
			}
		})
	}
}

// diffOutputs says how two answers differ ("" if they do not). A nil and
// an empty Data are the same.
func diffOutputs(got, want *kinesis.GetRecordsOutput) string {
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%q", *p)
	}
	tm := func(p *time.Time) string {
		if p == nil {
			return "<nil>"
		}
		return p.UTC().Format(time.RFC3339Nano)
	}
	i64 := func(p *int64) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprint(*p)
	}
	if a, b := str(got.NextShardIterator), str(want.NextShardIterator); a != b {
		return fmt.Sprintf("NextShardIterator %s, want %s", a, b)
	}
	if a, b := i64(got.MillisBehindLatest), i64(want.MillisBehindLatest); a != b {
		return fmt.Sprintf("MillisBehindLatest %s, want %s", a, b)
	}
	if len(got.Records) != len(want.Records) {
		return fmt.Sprintf("%d records, want %d", len(got.Records), len(want.Records))
	}
	for i := range got.Records {
		g, w := got.Records[i], want.Records[i]
		switch {
		case !bytes.Equal(g.Data, w.Data):
			return fmt.Sprintf("record %d: Data %q, want %q", i, trunc(g.Data), trunc(w.Data))
		case str(g.SequenceNumber) != str(w.SequenceNumber):
			return fmt.Sprintf("record %d: SequenceNumber %s, want %s", i, str(g.SequenceNumber), str(w.SequenceNumber))
		case str(g.PartitionKey) != str(w.PartitionKey):
			return fmt.Sprintf("record %d: PartitionKey %s, want %s", i, str(g.PartitionKey), str(w.PartitionKey))
		case g.EncryptionType != w.EncryptionType:
			return fmt.Sprintf("record %d: EncryptionType %q, want %q", i, g.EncryptionType, w.EncryptionType)
		case tm(g.ApproximateArrivalTimestamp) != tm(w.ApproximateArrivalTimestamp):
			return fmt.Sprintf("record %d: time %s, want %s", i, tm(g.ApproximateArrivalTimestamp), tm(w.ApproximateArrivalTimestamp))
		}
	}
	if len(got.ChildShards) != len(want.ChildShards) {
		return fmt.Sprintf("%d child shards, want %d", len(got.ChildShards), len(want.ChildShards))
	}
	for i := range got.ChildShards {
		g, w := got.ChildShards[i], want.ChildShards[i]
		if str(g.ShardId) != str(w.ShardId) || fmt.Sprintf("%q", g.ParentShards) != fmt.Sprintf("%q", w.ParentShards) ||
			(g.HashKeyRange == nil) != (w.HashKeyRange == nil) ||
			g.HashKeyRange != nil && (str(g.HashKeyRange.StartingHashKey) != str(w.HashKeyRange.StartingHashKey) ||
				str(g.HashKeyRange.EndingHashKey) != str(w.HashKeyRange.EndingHashKey)) {
			hkr := func(h *types.HashKeyRange) string {
				if h == nil {
					return "<nil>"
				}
				return str(h.StartingHashKey) + "–" + str(h.EndingHashKey)
			}
			return fmt.Sprintf("child shard %d: %s %q %s, want %s %q %s", i, str(g.ShardId), g.ParentShards, hkr(g.HashKeyRange),
				str(w.ShardId), w.ParentShards, hkr(w.HashKeyRange))
		}
	}
	return ""
}

func TestDecodeJSONRefusesMalformed(t *testing.T) {
	for name, b := range map[string]string{
		"empty":                 ``,
		"not an object":         `[]`,
		"truncated":             `{"Records":[{"SequenceNumber":"1"}`,
		"trailing bytes":        `{"Records":[]} x`,
		"no Records":            `{"NextShardIterator":"x"}`,
		"no sequence number":    `{"Records":[{"Data":"eA=="}]}`,
		"empty sequence number": `{"Records":[{"SequenceNumber":""}]}`,
		"a key that is no text": `{1:2}`,
		"bad base64":            `{"Records":[{"SequenceNumber":"1","Data":"!!!!"}]}`,
		"base64 unpadded":       `{"Records":[{"SequenceNumber":"1","Data":"eA"}]}`,
		"a string not ending":   `{"Records":[{"SequenceNumber":"1`,
		"a bad escape":          `{"Records":[{"SequenceNumber":"\q"}]}`,
		"a short \\u":           `{"Records":[{"SequenceNumber":"\u12"}]}`,
		"a float for an int":    `{"Records":[],"MillisBehindLatest":1.5}`,
		"a time not a number":   `{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":"2026"}]}`,
		"a time out of range":   `{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1e400}]}`,
		"child without id":      `{"Records":[],"ChildShards":[{"ParentShards":["a"]}]}`,
		"empty parent id":       `{"Records":[],"ChildShards":[{"ShardId":"b","ParentShards":[""]}]}`,
		"missing comma":         `{"Records":[] "NextShardIterator":"x"}`,
		"deep nesting":          `{"X":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"Records":[]}`,
		"a bad literal":         `{"Records":[],"X":nul}`,
	} {
		if out, err := decodeGetRecordsJSON([]byte(b)); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, out)
		}
	}
}

// craftedJSONAnswers are answers whose arrays cost far more than their
// bytes if taken at their word: each fills size bytes.
func craftedJSONAnswers(size int) map[string][]byte {
	repeat := func(prefix, elem, suffix string) []byte {
		b := []byte(prefix)
		for len(b)+len(elem)+len(suffix) < size {
			b = append(b, elem...)
		}
		b = bytes.TrimSuffix(b, []byte(","))
		return append(b, suffix...)
	}
	return map[string][]byte{
		"Records: empty objects":         repeat(`{"Records":[`, `{},`, `]}`),
		"Records: the least records":     repeat(`{"Records":[`, `{"SequenceNumber":"1"},`, `]}`),
		"Records: the least, then wrong": append(repeat(`{"Records":[`, `{"SequenceNumber":"1"},`, ``), `{}]}`...),
		"ChildShards: empty objects":     repeat(`{"Records":[],"ChildShards":[`, `{},`, `]}`),
		"ChildShards: the least":         repeat(`{"Records":[],"ChildShards":[`, `{"ShardId":"1"},`, `]}`),
		"ParentShards: one-letter ids":   repeat(`{"Records":[],"ChildShards":[{"ShardId":"1","ParentShards":[`, `"1",`, `]}]}`),
		"unknown: nested arrays":         repeat(`{"Records":[],"X":[`, `[],`, `]}`),
		"escapes":                        repeat(`{"Records":[{"SequenceNumber":"`, `\u00e9`, `"}]}`),
	}
}

func TestDecodeJSONAllocationBounded(t *testing.T) {
	for name, b := range craftedJSONAnswers(4 << 20) {
		checkAllocBound(t, name, b, func(b []byte) error { _, err := decodeGetRecordsJSON(b); return err })
	}
}

// referenceJSON decodes a GetRecords answer with encoding/json as the SDK
// defines the shapes: keys as written, null for absent, Data in standard
// base64, times epoch seconds through smithy-go's own ParseEpochSeconds.
func referenceJSON(b []byte) (*kinesis.GetRecordsOutput, error) {
	type rawObject = map[string]json.RawMessage
	isNull := func(m json.RawMessage) bool { return string(m) == "null" }
	str := func(m json.RawMessage) (*string, error) {
		if isNull(m) {
			return nil, nil
		}
		var s string
		err := json.Unmarshal(m, &s)
		return &s, err
	}
	var top rawObject
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, fmt.Errorf("null")
	}
	out := &kinesis.GetRecordsOutput{}
	var err error
	if m, ok := top["NextShardIterator"]; ok {
		if out.NextShardIterator, err = str(m); err != nil {
			return nil, err
		}
	}
	if m, ok := top["MillisBehindLatest"]; ok && !isNull(m) {
		var v int64
		if err := json.Unmarshal(m, &v); err != nil {
			return nil, err
		}
		out.MillisBehindLatest = &v
	}
	recs, ok := top["Records"]
	if !ok {
		return nil, fmt.Errorf("no Records")
	}
	var raws []rawObject
	if err := json.Unmarshal(recs, &raws); err != nil {
		return nil, err
	}
	for _, raw := range raws {
		var r types.Record
		for k, m := range raw {
			switch k {
			case "Data":
				if !isNull(m) {
					var s string
					if err := json.Unmarshal(m, &s); err != nil {
						return nil, err
					}
					if r.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
						return nil, err
					}
				}
			case "SequenceNumber":
				if r.SequenceNumber, err = str(m); err != nil {
					return nil, err
				}
			case "PartitionKey":
				if r.PartitionKey, err = str(m); err != nil {
					return nil, err
				}
			case "EncryptionType":
				s, err := str(m)
				if err != nil {
					return nil, err
				}
				r.EncryptionType = types.EncryptionType(aws.ToString(s))
			case "ApproximateArrivalTimestamp":
				if !isNull(m) {
					var f float64
					if err := json.Unmarshal(m, &f); err != nil {
						return nil, err
					}
					r.ApproximateArrivalTimestamp = aws.Time(smithytime.ParseEpochSeconds(f))
				}
			}
		}
		out.Records = append(out.Records, r)
	}
	if m, ok := top["ChildShards"]; ok {
		var raws []rawObject
		if err := json.Unmarshal(m, &raws); err != nil {
			return nil, err
		}
		for _, raw := range raws {
			var c types.ChildShard
			for k, m := range raw {
				switch k {
				case "ShardId":
					if c.ShardId, err = str(m); err != nil {
						return nil, err
					}
				case "ParentShards":
					if err := json.Unmarshal(m, &c.ParentShards); err != nil {
						return nil, err
					}
				case "HashKeyRange":
					// Keys as written (a struct would match them in any case).
					var h rawObject
					if err := json.Unmarshal(m, &h); err != nil {
						return nil, err
					}
					if h != nil {
						c.HashKeyRange = &types.HashKeyRange{}
						if m, ok := h["StartingHashKey"]; ok {
							if c.HashKeyRange.StartingHashKey, err = str(m); err != nil {
								return nil, err
							}
						}
						if m, ok := h["EndingHashKey"]; ok {
							if c.HashKeyRange.EndingHashKey, err = str(m); err != nil {
								return nil, err
							}
						}
					}
				}
			}
			out.ChildShards = append(out.ChildShards, c)
		}
	}
	return out, nil
}

// The JSON decoder never fails to answer, never allocates more than the
// bound, and whenever it and encoding/json (as the SDK reads the shapes)
// both decode an answer of valid UTF-8, they read the same.
func FuzzDecodeGetRecordsJSON(f *testing.F) {
	for _, b := range jsonAnswers() {
		if len(b) < 100_000 {
			f.Add([]byte(b))
		}
	}
	for _, b := range craftedJSONAnswers(16 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := utf8.Valid(b)
		var want *kinesis.GetRecordsOutput
		var werr error
		if valid {
			want, werr = referenceJSON(b)
		}
		var (
			got *kinesis.GetRecordsOutput
			err error
		)
		in := bytes.Clone(b) // the decoder writes over its input
		limit := uint64(allocPerByte*len(b) + allocSlack)
		ok, n := allocatedAtMost(limit, func() { copy(in, b); got, err = decodeGetRecordsJSON(in) })
		if err == nil && got == nil {
			t.Fatal("no answer and no error")
		}
		if !ok {
			t.Fatalf("decoding %d bytes allocated %d bytes (%.1f× its size), more than %d (error: %v)", len(b), n, float64(n)/float64(max(1, len(b))), limit, err)
		}
		if err == nil && valid && werr == nil {
			if d := diffOutputs(got, want); d != "" {
				t.Fatalf("decoded differently from encoding/json: %s", d)
			}
		}
	})
}

// BenchmarkDecodeGetRecordsJSON: BenchmarkDecodeGetRecords's answer (1,000
// records of 100 bytes) in JSON, as Kinesis writes it.
func BenchmarkDecodeGetRecordsJSON(b *testing.B) {
	var js strings.Builder
	js.WriteString(`{"MillisBehindLatest":0,"NextShardIterator":"` + strings.Repeat("I", 200) + `","Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("d"), 100))
	for i := range 1000 {
		if i > 0 {
			js.WriteByte(',')
		}
		js.WriteString(`{"ApproximateArrivalTimestamp":1.796051652086E9,"Data":"` + data + `","EncryptionType":"NONE","PartitionKey":"partition-key-0001","SequenceNumber":"49590338271490256608559692538361571095921575989136588801"}`)
	}
	js.WriteString("]}")
	buf := []byte(js.String()) // no escapes: the decoder does not write over it
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGetRecordsJSON(buf); err != nil {
			b.Fatal(err)
		}
	}
}
