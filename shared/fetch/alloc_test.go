package fetch

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// What a decoder may allocate for an answer of n bytes, whatever the
// bytes: allocPerByte bytes a byte, and allocSlack besides (an error's
// text, the answer's few fixed objects). An answer of n bytes is already
// held in n bytes; the records the SDK's types make of it take more than
// the bytes they come from (a 72-byte types.Record for as few as 18 bytes
// of CBOR), so the factor cannot be 1, but it must not follow what the
// answer merely declares.
//
// The worst cases, by the least bytes an element takes: a record's 72
// bytes and its share of the strings' and times' arrays for 18 bytes
// (~6×); a child shard's 48 for 11 (~4.4×) and, inside it, a 16-byte
// string header for each parent shard id of 2 bytes (8×).
const (
	allocPerByte = 16
	allocSlack   = 2 << 10
)

// allocated returns the bytes of heap that f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocatedAtMost reports whether f allocates at most limit bytes, and
// what it allocated. The count is the process's: a figure over the limit
// is measured twice more and the least taken, since what f allocates is
// the same every time and what runs beside it (the fuzzing engine, a
// pool refilled after a GC) is not.
func allocatedAtMost(limit uint64, f func()) (bool, uint64) {
	got := allocated(f)
	for range 2 {
		if got <= limit {
			break
		}
		got = min(got, allocated(f))
	}
	return got <= limit, got
}

// checkAllocBound fails t if decoding b allocates more than the bound.
func checkAllocBound(t *testing.T, name string, b []byte, decode func([]byte) error) {
	t.Helper()
	limit := uint64(allocPerByte*len(b) + allocSlack)
	ok, got := allocatedAtMost(limit, func() { _ = decode(b) })
	t.Logf("%s: %d bytes allocated %d (%.2f× its size)", name, len(b), got, float64(got)/float64(max(1, len(b))))
	if !ok {
		t.Errorf("%s: decoding %d bytes allocated %d bytes (%.1f× its size), more than %d", name, len(b), got, float64(got)/float64(max(1, len(b))), limit)
	}
}

// craftedAnswers are answers whose declared sizes cost far more than
// their bytes: each fills size bytes.
func craftedAnswers(size int) map[string][]byte {
	fill := func(prefix []byte, c byte) []byte {
		return append(prefix, bytes.Repeat([]byte{c}, size-len(prefix))...)
	}
	// A Records array declaring one element per byte left.
	recordsHead := func(per int) []byte {
		e := (&enc{}).head(majMap, 1).text("Records")
		return e.head(majArray, uint64((size-len(e.b)-9)/per)).b
	}
	return map[string][]byte{
		// Issue #17's case: one record per byte left, each an empty map.
		"Records: one per byte left": fill(recordsHead(1), 0xa0),
		// As many records as could be well-formed, none of them is.
		"Records: one per 18 bytes left": fill(recordsHead(18), 0xa0),
		// An indefinite array of records with no sequence number.
		"Records: indefinite, empty maps": fill((&enc{}).head(majMap, 1).text("Records").raw(0x9f).b, 0xa0),
		// Child shards with nothing in them.
		"ChildShards: empty maps": fill((&enc{}).head(majMap, 1).text("ChildShards").raw(0x9f).b, 0xa0),
		// Parent shard ids that are empty strings.
		"ParentShards: empty strings": fill((&enc{}).head(majMap, 1).text("ChildShards").head(majArray, 1).
			head(majMap, 1).text("ParentShards").raw(0x9f).b, 0x60),
		// A string of one-byte chunks, skipped under an unknown key.
		"unknown key: chunked string": func() []byte {
			b := (&enc{}).head(majMap, 1).text("Unknown").raw(0x5f).b
			for len(b)+2 <= size-1 {
				b = append(b, 0x41, 'x')
			}
			return append(b, 0xff)
		}(),
		// A chunked data blob.
		"Data: chunked string": func() []byte {
			b := (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).head(majMap, 1).text("Data").raw(0x5f).b
			for len(b)+2 <= size-1 {
				b = append(b, 0x41, 'x')
			}
			return append(b, 0xff)
		}(),
		// A huge unknown key in front of an error.
		"a long unknown key": func() []byte {
			b := (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).head(majMap, 1).b
			return fill(appendHead(b, majText, uint64(size-len(b)-5)), 'k')
		}(),
	}
}

// A malformed answer allocates at most a small multiple of its size,
// whatever it declares (issue #17, point 6: 4 MiB whose Records array
// declared one element per byte left allocated 521 MiB).
func TestDecodeAllocationBounded(t *testing.T) {
	for name, b := range craftedAnswers(4 << 20) {
		if _, err := decodeGetRecords(b); err == nil && name != "unknown key: chunked string" {
			t.Errorf("%s: decoded", name)
		}
		checkAllocBound(t, name, b, func(b []byte) error { _, err := decodeGetRecords(b); return err })
	}
}

// The decoder never fails to answer, and never allocates more than the
// bound, for any input. Seeds: Kinesis's own answer, forms other servers
// write, and the crafted answers above at 16 KiB.
func FuzzDecodeGetRecords(f *testing.F) {
	f.Add(kinesisAnswer())
	f.Add([]byte{0xbf, 0xff})
	for _, b := range craftedAnswers(16 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			out *kinesis.GetRecordsOutput
			err error
		)
		limit := uint64(allocPerByte*len(b) + allocSlack)
		ok, got := allocatedAtMost(limit, func() { out, err = decodeGetRecords(b) })
		if err == nil && out == nil {
			t.Fatal("no answer and no error")
		}
		if !ok {
			t.Fatalf("decoding %d bytes allocated %d bytes (%.1f× its size), more than %d (error: %v)", len(b), got, float64(got)/float64(max(1, len(b))), limit, err)
		}
	})
}
