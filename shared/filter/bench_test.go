package filter

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchRecord is a realistic record: a 300-byte JSON order event.
const benchRecord = `{"eventId":"6f1c2a9e-43b7-4d0e-9a51-7c3e2b8d4f10","type":"order.created","ts":"2024-05-17T09:31:12.417Z",` +
	`"customer":{"id":"C-104729","tier":"gold","region":"eu-west-1"},` +
	`"order":{"id":"O-99381","type":"buy","stock":"ANYCO","quantity":1000,"price":12.75,"tags":["web","promo"]},` +
	`"source":"checkout-svc","v":3}`

var benchPatterns = []string{
	`{"data": {"order": {"type": ["buy"], "quantity": [{"numeric": [">=", 500]}]}}}`,
	`{"partitionKey": [{"prefix": "eu-"}], "data": {"customer": {"tier": [{"anything-but": ["test", "internal"]}]}}}`,
}

// BenchmarkMatch runs Match over a 300-byte JSON record with two patterns.
// Run with: go test -run='^$' -bench=Match -benchmem ./shared/filter/
func BenchmarkMatch(b *testing.B) {
	if len(benchRecord) < 290 || len(benchRecord) > 310 {
		b.Fatalf("record is %d bytes, want about 300", len(benchRecord))
	}
	f, err := Parse(benchPatterns)
	if err != nil {
		b.Fatal(err)
	}
	miss := strings.Replace(strings.Replace(benchRecord, `"buy"`, `"bid"`, 1), `"gold"`, `"test"`, 1)
	for _, bc := range []struct {
		name string
		pk   string
		data string
		want bool
	}{
		{"match", "us-7", benchRecord, true},          // the first pattern matches, at the end of the scan
		{"miss", "eu-7", miss, false},                 // both patterns read the data, neither matches
		{"miss-by-partitionKey", "us-7", miss, false}, // the second pattern fails on the key; the first still reads the data
		{"not-json", "eu-7", "plain text payload " + benchRecord[:280], false},
	} {
		data := []byte(bc.data)
		if got := f.Match(bc.pk, data); got != bc.want {
			b.Fatalf("%s: Match: got %v, want %v", bc.name, got, bc.want)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f.Match(bc.pk, data)
			}
		})
	}
	// For scale: checking the same record is JSON with encoding/json, and
	// decoding it into a map, as an evaluator over decoded values would.
	data := []byte(benchRecord)
	b.Run("baseline-json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			json.Valid(data)
		}
	})
	b.Run("baseline-json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var v map[string]any
			_ = json.Unmarshal(data, &v)
		}
	})
}
