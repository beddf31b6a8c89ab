package fetch

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// A decoder for the CBOR (RFC 8949) that Kinesis answers GetRecords with.
// It reads what the answer holds and skips anything else. Definite-length
// strings are not copied: the strings and byte slices it returns share the
// buffer, which must therefore never change afterwards (the buffer is the
// answer's, read for this decoder alone).
//
// What it allocates is bounded by the answer's size, never by what the
// answer declares: an array is taken to hold no more elements than the
// bytes left could encode at their smallest (minRecord and the rest below),
// so an answer of n bytes costs at most a small multiple of n
// (FuzzDecodeGetRecordsAllocs checks it) however malformed it is.

// CBOR major types.
const (
	majUint   = 0
	majNegint = 1
	majBytes  = 2
	majText   = 3
	majArray  = 4
	majMap    = 5
	majTag    = 6
	majSimple = 7
)

const (
	infoIndefinite = 31
	breakByte      = 0xff
	nullByte       = 0xf6
	undefinedByte  = 0xf7
	maxDepth       = 32
)

var errTruncated = errors.New("truncated")

// The fewest bytes an element can be encoded in, by what the decoder
// requires of it; they bound how many elements the bytes left can hold.
const (
	// A record is a map with a SequenceNumber of one character at least.
	minRecord = 1 + 1 + len("SequenceNumber") + 2
	// A string field of a record: the shortest key and an empty string.
	minRecordString = 1 + len("PartitionKey") + 1
	// A timestamp field of a record: its key and a one-byte value.
	minRecordTime = 1 + len("ApproximateArrivalTimestamp") + 1
	// A child shard is a map with a ShardId of one character at least.
	minChildShard = 1 + 1 + len("ShardId") + 2
	// A parent shard id is a string of one character at least.
	minShardID = 2
)

type decoder struct {
	b       []byte
	i       int
	sawText bool // a blob came as base64 text
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", d.i, fmt.Sprintf(format, args...))
}

// head reads an item's initial byte and argument. For an indefinite
// length, indefinite is true and arg is 0.
func (d *decoder) head() (major byte, arg uint64, indefinite bool, err error) {
	if d.i >= len(d.b) {
		return 0, 0, false, d.errorf("%v", errTruncated)
	}
	c := d.b[d.i]
	d.i++
	major, info := c>>5, c&0x1f
	switch {
	case info < 24:
		return major, uint64(info), false, nil
	case info == 24:
		if d.i+1 > len(d.b) {
			return 0, 0, false, d.errorf("%v", errTruncated)
		}
		arg = uint64(d.b[d.i])
		d.i++
	case info == 25:
		if d.i+2 > len(d.b) {
			return 0, 0, false, d.errorf("%v", errTruncated)
		}
		arg = uint64(binary.BigEndian.Uint16(d.b[d.i:]))
		d.i += 2
	case info == 26:
		if d.i+4 > len(d.b) {
			return 0, 0, false, d.errorf("%v", errTruncated)
		}
		arg = uint64(binary.BigEndian.Uint32(d.b[d.i:]))
		d.i += 4
	case info == 27:
		if d.i+8 > len(d.b) {
			return 0, 0, false, d.errorf("%v", errTruncated)
		}
		arg = binary.BigEndian.Uint64(d.b[d.i:])
		d.i += 8
	case info == infoIndefinite && major >= majBytes && major <= majMap:
		return major, 0, true, nil
	default:
		return 0, 0, false, d.errorf("initial byte 0x%02x is not well-formed", c)
	}
	return major, arg, false, nil
}

// take returns the next n bytes, shared with the buffer.
func (d *decoder) take(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)-d.i) {
		return nil, d.errorf("a string of %d bytes with %d left", n, len(d.b)-d.i)
	}
	s := d.b[d.i : d.i+int(n) : d.i+int(n)]
	d.i += int(n)
	return s, nil
}

// null reads a null or undefined if one is next.
func (d *decoder) null() bool {
	if d.i < len(d.b) && (d.b[d.i] == nullByte || d.b[d.i] == undefinedByte) {
		d.i++
		return true
	}
	return false
}

// isBreak reads the break that ends an indefinite-length item if it is next.
func (d *decoder) isBreak() bool {
	if d.i < len(d.b) && d.b[d.i] == breakByte {
		d.i++
		return true
	}
	return false
}

// str reads a byte or text string of the major type want (either, with
// want < 0). Definite strings share the buffer; indefinite ones are joined.
func (d *decoder) str(want int) (major byte, s []byte, err error) {
	at := d.i
	major, arg, indef, err := d.head()
	if err != nil {
		return 0, nil, err
	}
	if major != majBytes && major != majText || want >= 0 && major != byte(want) {
		d.i = at
		return 0, nil, d.errorf("major type %d, want a string", major)
	}
	if !indef {
		s, err = d.take(arg)
		return major, s, err
	}
	// The chunks are measured first, so that the joined string is
	// allocated once, at its size.
	start := d.i
	size, err := d.chunks(major)
	if err != nil {
		return 0, nil, err
	}
	if size == 0 {
		return major, nil, nil
	}
	end := d.i
	joined := make([]byte, 0, size)
	for d.i = start; d.i < end-1; {
		_, arg, _, _ := d.head()
		chunk, _ := d.take(arg)
		joined = append(joined, chunk...)
	}
	d.i = end
	return major, joined, nil
}

// chunks reads the chunks of an indefinite-length string of type major up
// to its break and returns their length in all.
func (d *decoder) chunks(major byte) (int, error) {
	size := 0
	for !d.isBreak() {
		m, arg, indef, err := d.head()
		if err != nil {
			return 0, err
		}
		if m != major || indef {
			return 0, d.errorf("a chunk of major type %d in a string of type %d", m, major)
		}
		chunk, err := d.take(arg)
		if err != nil {
			return 0, err
		}
		size += len(chunk)
	}
	return size, nil
}

// text reads a text string (or null, as "") and shares its bytes.
func (d *decoder) text() (string, error) {
	if d.null() {
		return "", nil
	}
	_, s, err := d.str(majText)
	if err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(s), len(s)), nil
}

// blob reads a byte string (shared), or a text string of base64 as some
// servers write blobs (kinesis-mock does), decoded in place: the bytes
// decoded are written over the text they come from, so that the answer
// is the only copy either way. Decoding writes 3 bytes for every 4 read,
// from the front, never past what it has read; a string that does not
// decode is an error, and the answer is not used.
func (d *decoder) blob() ([]byte, error) {
	if d.null() {
		return nil, nil
	}
	major, s, err := d.str(-1)
	if err != nil || major == majBytes {
		return s, err
	}
	d.sawText = true
	n, err := decodeBase64InPlace(s)
	if err != nil {
		return nil, d.errorf("a blob in base64 text that does not decode: %v", err)
	}
	return s[:n:n], nil
}

// decodeBase64InPlace decodes standard (padded) base64 text s over
// itself and returns the length decoded. Each block of text is copied
// aside before it is decoded, and what it decodes to is written at or
// before where the block began, so nothing unread is overwritten.
func decodeBase64InPlace(s []byte) (int, error) {
	if len(s)%4 != 0 {
		return 0, fmt.Errorf("%d bytes of text, not a multiple of 4", len(s))
	}
	var block [4096]byte
	n := 0
	for i := 0; i < len(s); i += len(block) {
		m := copy(block[:], s[i:])
		if i+m < len(s) && bytes.IndexByte(block[:m], '=') >= 0 {
			return 0, fmt.Errorf("padding before the end, in text bytes %d–%d", i, i+m)
		}
		w, err := base64.StdEncoding.Decode(s[n:], block[:m])
		if err != nil {
			return 0, fmt.Errorf("text bytes %d–%d: %w", i, i+m, err)
		}
		n += w
	}
	return n, nil
}

// skipTags reads any tags before an item.
func (d *decoder) skipTags() error {
	for d.i < len(d.b) && d.b[d.i]>>5 == majTag {
		if _, _, _, err := d.head(); err != nil {
			return err
		}
	}
	return nil
}

// int reads an integer (tags before it are ignored).
func (d *decoder) int() (int64, error) {
	if err := d.skipTags(); err != nil {
		return 0, err
	}
	major, arg, _, err := d.head()
	if err != nil {
		return 0, err
	}
	switch {
	case major == majUint && arg <= math.MaxInt64:
		return int64(arg), nil
	case major == majNegint && arg < math.MaxInt64:
		return -1 - int64(arg), nil
	}
	return 0, d.errorf("major type %d (%d), want an integer", major, arg)
}

// number reads an integer or a float as a float64.
func (d *decoder) number() (float64, error) {
	if err := d.skipTags(); err != nil {
		return 0, err
	}
	if d.i < len(d.b) && d.b[d.i]>>5 == majSimple {
		c := d.b[d.i]
		_, arg, _, err := d.head()
		if err != nil {
			return 0, err
		}
		switch c & 0x1f {
		case 25:
			return float64(halfToFloat(uint16(arg))), nil
		case 26:
			return float64(math.Float32frombits(uint32(arg))), nil
		case 27:
			return math.Float64frombits(arg), nil
		}
		return 0, d.errorf("simple value 0x%02x, want a number", c)
	}
	v, err := d.int()
	return float64(v), err
}

// timestamp reads a time as Kinesis writes it in CBOR: epoch milliseconds,
// usually under tag 1. Epoch seconds (a number below 1e11, before 1973 as
// milliseconds) are read as seconds, so both forms decode.
func (d *decoder) timestamp() (time.Time, error) {
	if d.null() {
		return time.Time{}, nil
	}
	v, err := d.number()
	if err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return time.Time{}, d.errorf("a timestamp of %v", v)
	}
	if math.Abs(v) < 1e11 {
		v *= 1000
	}
	ms := math.Floor(v)
	return time.UnixMilli(int64(ms)).Add(time.Duration((v - ms) * float64(time.Millisecond))), nil
}

// container reads an array or map head: its length, or -1 if indefinite.
func (d *decoder) container(want byte) (int, error) {
	if d.null() {
		return 0, nil
	}
	at := d.i
	major, arg, indef, err := d.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		d.i = at
		return 0, d.errorf("major type %d, want %d", major, want)
	}
	if indef {
		return -1, nil
	}
	// Every element takes a byte at least (a map's entry two).
	if arg > uint64(len(d.b)-d.i) {
		return 0, d.errorf("%d elements with %d bytes left", arg, len(d.b)-d.i)
	}
	return int(arg), nil
}

// elements returns how many elements an array holds whose head gave n
// (-1: indefinite; its elements are then counted by reading ahead, and the
// array is left where it was), and how many bytes they take at most. It
// refuses an array that could not hold n elements of least bytes each, so
// that what is allocated for them follows the answer's size.
func (d *decoder) elements(n, least int) (count, size int, err error) {
	size = len(d.b) - d.i
	if n < 0 {
		at := d.i
		for n = 0; !d.isBreak(); n++ {
			if err := d.skip(1); err != nil {
				return 0, 0, err
			}
		}
		size = d.i - 1 - at
		d.i = at
	}
	if n > size/least {
		return 0, 0, d.errorf("%d elements in %d bytes, each of %d bytes at least", n, size, least)
	}
	return n, size, nil
}

// more reports whether element i of a container of length n (or -1) follows.
func (d *decoder) more(i, n int) bool {
	if n < 0 {
		return !d.isBreak()
	}
	return i < n
}

// key reads a map key, which must be a text string.
func (d *decoder) key() (string, error) {
	_, s, err := d.str(majText)
	if err != nil {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(s), len(s)), nil
}

// skip reads one item of any kind.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested more than %d deep", maxDepth)
	}
	major, arg, indef, err := d.head()
	if err != nil {
		return err
	}
	switch major {
	case majUint, majNegint, majSimple:
		return nil
	case majBytes, majText:
		if indef {
			_, err := d.chunks(major)
			return err
		}
		_, err := d.take(arg)
		return err
	case majTag:
		return d.skip(depth + 1)
	}
	n := -1
	if !indef {
		if arg > uint64(len(d.b)-d.i) {
			return d.errorf("%d elements with %d bytes left", arg, len(d.b)-d.i)
		}
		n = int(arg)
		if major == majMap {
			n *= 2
		}
	}
	for i := 0; d.more(i, n); i++ {
		if d.i >= len(d.b) {
			return d.errorf("%v", errTruncated)
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// halfToFloat converts an IEEE 754 half-precision float.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch exp {
	case 0:
		f := float32(frac) / 1024 / 16384 // subnormal: frac × 2^-24
		if sign != 0 {
			return -f
		}
		return f
	case 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// decodeGetRecords decodes a GetRecords answer. The records' Data,
// PartitionKey and SequenceNumber share buf.
func decodeGetRecords(buf []byte) (*kinesis.GetRecordsOutput, error) {
	a, err := decodeAnswerCBOR(buf, "NextShardIterator")
	if err != nil {
		return nil, err
	}
	return &kinesis.GetRecordsOutput{Records: a.records, NextShardIterator: a.next, MillisBehindLatest: a.behind, ChildShards: a.children}, nil
}

// decodeEventCBOR decodes a SubscribeToShardEvent's payload in CBOR, as
// decodeGetRecords does an answer: in place, the records sharing buf.
func decodeEventCBOR(buf []byte) (*types.SubscribeToShardEvent, error) {
	a, err := decodeAnswerCBOR(buf, "ContinuationSequenceNumber")
	if err != nil {
		return nil, err
	}
	return &types.SubscribeToShardEvent{Records: a.records, ContinuationSequenceNumber: a.next, MillisBehindLatest: a.behind, ChildShards: a.children}, nil
}

// decodeAnswerCBOR reads what a GetRecords answer and a
// SubscribeToShardEvent hold (answer's fields; nextKey names where to
// go on from).
func decodeAnswerCBOR(buf []byte, nextKey string) (answerParts, error) {
	d := &decoder{b: buf}
	var out answerParts
	n, err := d.container(majMap)
	if err != nil {
		return answerParts{}, err
	}
	seen := false
	for i := 0; d.more(i, n); i++ {
		k, err := d.key()
		if err != nil {
			return answerParts{}, err
		}
		switch k {
		case "Records":
			seen = true
			if out.records, err = d.records(); err != nil {
				return answerParts{}, fmt.Errorf("Records: %w", err)
			}
		case nextKey:
			if d.null() {
				break
			}
			s, err := d.text()
			if err != nil {
				return answerParts{}, fmt.Errorf("%s: %w", nextKey, err)
			}
			// Its own copy: it outlives the answer.
			out.next = aws.String(strings.Clone(s))
		case "MillisBehindLatest":
			if d.null() {
				break
			}
			v, err := d.int()
			if err != nil {
				return answerParts{}, fmt.Errorf("MillisBehindLatest: %w", err)
			}
			out.behind = &v
		case "ChildShards":
			if out.children, err = d.childShards(); err != nil {
				return answerParts{}, fmt.Errorf("ChildShards: %w", err)
			}
		default:
			if err := d.skip(0); err != nil {
				return answerParts{}, fmt.Errorf("%s: %w", shortKey(k), err)
			}
		}
	}
	if d.i != len(d.b) {
		return answerParts{}, d.errorf("%d bytes after the answer", len(d.b)-d.i)
	}
	if !seen {
		return answerParts{}, errors.New("no Records in the answer")
	}
	if d.sawText {
		compact(out.records)
	}
	return out, nil
}

// compact copies what the records share of an answer whose blobs came as
// base64 text into one buffer of their own size, so that the answer (a
// third larger than the data in it) is let go: the records then hold no
// more than an answer of byte strings would.
func compact(recs []types.Record) {
	size := 0
	for i := range recs {
		r := &recs[i]
		size += len(r.Data) + len(aws.ToString(r.SequenceNumber)) + len(aws.ToString(r.PartitionKey)) + len(r.EncryptionType)
	}
	buf := make([]byte, 0, size)
	put := func(b []byte) []byte {
		at := len(buf)
		buf = append(buf, b...)
		return buf[at:len(buf):len(buf)]
	}
	str := func(s string) string {
		if s == "" {
			return ""
		}
		b := put(unsafe.Slice(unsafe.StringData(s), len(s)))
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	for i := range recs {
		r := &recs[i]
		if r.Data != nil {
			r.Data = put(r.Data)
		}
		if r.SequenceNumber != nil {
			*r.SequenceNumber = str(*r.SequenceNumber)
		}
		if r.PartitionKey != nil {
			*r.PartitionKey = str(*r.PartitionKey)
		}
		r.EncryptionType = types.EncryptionType(str(string(r.EncryptionType)))
	}
}

// records reads the Records array. The pointers the SDK's Record has are
// taken from three arrays, one allocation each for the whole answer, each
// no longer than the bytes left could fill.
func (d *decoder) records() ([]types.Record, error) {
	head, err := d.container(majArray)
	if err != nil {
		return nil, err
	}
	n, size, err := d.elements(head, minRecord)
	if err != nil || n == 0 {
		d.endArray(head)
		return nil, err
	}
	recs := make([]types.Record, 0, n)
	// A record has two strings and a time, or fewer; each takes bytes.
	strs := make([]string, 0, min(2*n, size/minRecordString))
	times := make([]time.Time, 0, min(n, size/minRecordTime))
	for i := range n {
		if err := d.record(&recs, &strs, &times); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	d.endArray(head)
	return recs, nil
}

// endArray reads the break of an indefinite array whose elements were
// counted by elements and read.
func (d *decoder) endArray(head int) {
	if head < 0 {
		d.isBreak()
	}
}

func (d *decoder) record(recs *[]types.Record, strs *[]string, times *[]time.Time) error {
	n, err := d.container(majMap)
	if err != nil {
		return err
	}
	*recs = append(*recs, types.Record{})
	r := &(*recs)[len(*recs)-1]
	for i := 0; d.more(i, n); i++ {
		k, err := d.key()
		if err != nil {
			return err
		}
		switch k {
		case "Data":
			r.Data, err = d.blob()
		case "SequenceNumber", "PartitionKey":
			var s string
			if s, err = d.text(); err == nil && s == "" && k == "SequenceNumber" {
				err = errors.New("empty")
			} else if err == nil {
				*strs = append(*strs, s)
				p := &(*strs)[len(*strs)-1]
				if k == "SequenceNumber" {
					r.SequenceNumber = p
				} else {
					r.PartitionKey = p
				}
			}
		case "ApproximateArrivalTimestamp":
			var t time.Time
			if t, err = d.timestamp(); err == nil {
				*times = append(*times, t)
				r.ApproximateArrivalTimestamp = &(*times)[len(*times)-1]
			}
		case "EncryptionType":
			var s string
			if s, err = d.text(); err == nil {
				r.EncryptionType = types.EncryptionType(s)
			}
		default:
			err = d.skip(0)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", shortKey(k), err)
		}
	}
	if r.SequenceNumber == nil {
		return errors.New("no SequenceNumber")
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return nil
}

func (d *decoder) childShards() ([]types.ChildShard, error) {
	head, err := d.container(majArray)
	if err != nil {
		return nil, err
	}
	n, _, err := d.elements(head, minChildShard)
	if err != nil || n == 0 {
		d.endArray(head)
		return nil, err
	}
	out := make([]types.ChildShard, 0, n)
	for i := range n {
		var c types.ChildShard
		m, err := d.container(majMap)
		if err != nil {
			return nil, err
		}
		for j := 0; d.more(j, m); j++ {
			k, err := d.key()
			if err != nil {
				return nil, err
			}
			switch k {
			case "ShardId":
				var s string
				if s, err = d.shardID(); err == nil {
					c.ShardId = aws.String(s)
				}
			case "ParentShards":
				c.ParentShards, err = d.parentShards()
			case "HashKeyRange":
				c.HashKeyRange, err = d.hashKeyRange()
			default:
				err = d.skip(0)
			}
			if err != nil {
				return nil, fmt.Errorf("child shard %d: %s: %w", i, shortKey(k), err)
			}
		}
		if c.ShardId == nil {
			return nil, fmt.Errorf("child shard %d: no ShardId", i)
		}
		out = append(out, c)
	}
	d.endArray(head)
	return out, nil
}

// shardID reads a shard id, a string of its own (it outlives the answer).
func (d *decoder) shardID() (string, error) {
	s, err := d.text()
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", d.errorf("an empty shard id")
	}
	return strings.Clone(s), nil
}

func (d *decoder) parentShards() ([]string, error) {
	head, err := d.container(majArray)
	if err != nil {
		return nil, err
	}
	n, _, err := d.elements(head, minShardID)
	if err != nil || n == 0 {
		d.endArray(head)
		return nil, err
	}
	ids := make([]string, n)
	for i := range ids {
		if ids[i], err = d.shardID(); err != nil {
			return nil, err
		}
	}
	d.endArray(head)
	return ids, nil
}

// shortKey is a key as an error shows it: a key of any length is read,
// but its text in an error is bounded.
func shortKey(k string) string {
	const most = 40
	if len(k) <= most {
		return k
	}
	return k[:most] + "…"
}

func (d *decoder) hashKeyRange() (*types.HashKeyRange, error) {
	n, err := d.container(majMap)
	if err != nil {
		return nil, err
	}
	h := &types.HashKeyRange{}
	for i := 0; d.more(i, n); i++ {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		var s string
		switch k {
		case "StartingHashKey":
			if s, err = d.text(); err == nil {
				h.StartingHashKey = aws.String(strings.Clone(s))
			}
		case "EndingHashKey":
			if s, err = d.text(); err == nil {
				h.EndingHashKey = aws.String(strings.Clone(s))
			}
		default:
			err = d.skip(0)
		}
		if err != nil {
			return nil, err
		}
	}
	return h, nil
}

// decodeError reads __type and message from an error answer; empty when
// the body is not a CBOR map.
func decodeError(buf []byte) (code, msg string) {
	d := &decoder{b: buf}
	n, err := d.container(majMap)
	if err != nil {
		return "", ""
	}
	for i := 0; d.more(i, n); i++ {
		k, err := d.key()
		if err != nil {
			return code, msg
		}
		switch k {
		case "__type", "code":
			s, err := d.text()
			if err != nil {
				return code, msg
			}
			code = strings.Clone(s)
		case "message", "Message":
			s, err := d.text()
			if err != nil {
				return code, msg
			}
			msg = strings.Clone(s)
		default:
			if d.skip(0) != nil {
				return code, msg
			}
		}
	}
	return code, msg
}

// encodeGetRecords writes {"ShardIterator": it, "Limit": limit}.
func encodeGetRecords(it string, limit *int32) []byte {
	b := make([]byte, 0, len(it)+40)
	n := uint64(1)
	if limit != nil {
		n = 2
	}
	b = appendHead(b, majMap, n)
	b = appendText(b, "ShardIterator")
	b = appendText(b, it)
	if limit != nil {
		b = appendText(b, "Limit")
		if *limit >= 0 {
			b = appendHead(b, majUint, uint64(*limit))
		} else {
			b = appendHead(b, majNegint, uint64(-1-int64(*limit)))
		}
	}
	return b
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majText, uint64(len(s))), s...)
}

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}
