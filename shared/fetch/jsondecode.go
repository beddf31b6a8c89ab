package fetch

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// A decoder for the JSON (AWS JSON 1.1) that Kinesis answers GetRecords
// with, for the endpoints that do not speak CBOR (moto_server, other
// stand-ins, AWS_CBOR_DISABLE=true). The SDK decodes an answer token by
// token, allocating for every field of every record; this one reads it in
// three passes over the buffer: the records are counted, their fields
// found (strings unescaped in place, where they lie), and then the data
// of every record is decoded from base64, and its strings copied, into one
// buffer of their own size, so that the answer (a third larger than the
// data in it) is let go. An answer costs a few allocations, as in CBOR.
//
// What it allocates is bounded by the answer's size, as for CBOR: an
// array is taken to hold no more elements than its bytes could encode at
// their smallest (FuzzDecodeGetRecordsJSON checks it).
//
// It reads what the SDK reads, as the SDK reads it (times are epoch
// seconds, cut to the millisecond; data is standard base64), with two
// differences: bytes that are not UTF-8 inside a string are kept as they
// are (the SDK's encoding/json would write U+FFFD), and a string's
// control characters are not refused.

// The fewest bytes an element can take in JSON, as minRecord for CBOR.
const (
	minJSONRecord       = len(`{"SequenceNumber":"1"}`)
	minJSONRecordString = len(`"PartitionKey":"",`)
	minJSONRecordTime   = len(`"ApproximateArrivalTimestamp":0,`)
	minJSONChildShard   = len(`{"ShardId":"1"}`)
	minJSONShardID      = len(`"1",`)
)

type jsonDecoder struct {
	b []byte
	i int
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", d.i, fmt.Sprintf(format, args...))
}

// ws skips white space.
func (d *jsonDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (d *jsonDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// expect reads c, after white space.
func (d *jsonDecoder) expect(c byte) error {
	if d.peek() != c {
		if d.i >= len(d.b) {
			return d.errorf("%q expected, the answer ends", c)
		}
		return d.errorf("%q expected, %q found", c, d.b[d.i])
	}
	d.i++
	return nil
}

// literal reads null, true or false if one is next.
func (d *jsonDecoder) literal(word string) bool {
	if d.peek() == word[0] && bytes.HasPrefix(d.b[d.i:], []byte(word)) {
		d.i += len(word)
		return true
	}
	return false
}

func (d *jsonDecoder) null() bool { return d.literal("null") }

// str reads a string and returns its bytes, unescaped in place: they
// share the buffer. escaped reports whether it held escapes.
func (d *jsonDecoder) str() (s []byte, escaped bool, err error) {
	if err := d.expect('"'); err != nil {
		return nil, false, err
	}
	start := d.i
	end := bytes.IndexByte(d.b[start:], '"')
	if end < 0 {
		return nil, false, d.errorf("a string that does not end")
	}
	end += start
	if bytes.IndexByte(d.b[start:end], '\\') < 0 {
		d.i = end + 1
		return d.b[start:end:end], false, nil
	}
	return d.unescape(start)
}

// unescape reads the rest of a string that has escapes, from start, and
// writes it unescaped over itself: every escape is longer than what it
// stands for, so nothing unread is overwritten.
func (d *jsonDecoder) unescape(start int) ([]byte, bool, error) {
	w := start
	for r := start; ; {
		if r >= len(d.b) {
			d.i = r
			return nil, true, d.errorf("a string that does not end")
		}
		c := d.b[r]
		switch {
		case c == '"':
			d.i = r + 1
			return d.b[start:w:w], true, nil
		case c != '\\':
			d.b[w] = c
			w, r = w+1, r+1
			continue
		}
		if r+1 >= len(d.b) {
			d.i = r
			return nil, true, d.errorf("a string that does not end")
		}
		e := d.b[r+1]
		r += 2
		switch e {
		case '"', '\\', '/':
			d.b[w] = e
		case 'b':
			d.b[w] = '\b'
		case 'f':
			d.b[w] = '\f'
		case 'n':
			d.b[w] = '\n'
		case 'r':
			d.b[w] = '\r'
		case 't':
			d.b[w] = '\t'
		case 'u':
			u, ok := hex4(d.b, r)
			if !ok {
				d.i = r
				return nil, true, d.errorf("a \\u escape that is not 4 hex digits")
			}
			r += 4
			if 0xd800 <= u && u < 0xdc00 { // a surrogate pair, if the low half follows
				if lo, ok := hex4(d.b, r+2); ok && r+1 < len(d.b) && d.b[r] == '\\' && d.b[r+1] == 'u' && 0xdc00 <= lo && lo < 0xe000 {
					u = 0x10000 + (u-0xd800)<<10 + (lo - 0xdc00)
					r += 6
				} else {
					u = utf8.RuneError
				}
			} else if 0xdc00 <= u && u < 0xe000 {
				u = utf8.RuneError
			}
			w += utf8.EncodeRune(d.b[w:], rune(u))
			continue
		default:
			d.i = r - 1
			return nil, true, d.errorf("an escape \\%c", e)
		}
		w++
	}
}

// hex4 reads 4 hex digits at b[i:].
func hex4(b []byte, i int) (uint32, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var u uint32
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		u = u<<4 | uint32(c)
	}
	return u, true
}

// text reads a string (or null, as "") sharing the buffer.
func (d *jsonDecoder) text() (string, error) {
	if d.null() {
		return "", nil
	}
	s, _, err := d.str()
	return unsafe.String(unsafe.SliceData(s), len(s)), err
}

// number returns the bytes of a number.
func (d *jsonDecoder) number() ([]byte, error) {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return nil, d.errorf("a number expected")
	}
	return d.b[start:d.i], nil
}

// int reads an integer.
func (d *jsonDecoder) int() (int64, error) {
	at := d.i
	n, err := d.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(n), len(n)), 10, 64)
	if err != nil {
		d.i = at
		return 0, d.errorf("an integer expected: %v", err)
	}
	return v, nil
}

// timestamp reads epoch seconds as the SDK does (smithy-go's
// ParseEpochSeconds): cut to the millisecond, in UTC.
func (d *jsonDecoder) timestamp() (time.Time, error) {
	at := d.i
	n, err := d.number()
	if err != nil {
		return time.Time{}, err
	}
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(n), len(n)), 64)
	if err != nil || math.IsInf(v, 0) {
		d.i = at
		return time.Time{}, d.errorf("epoch seconds expected: %q", n)
	}
	// As big.Float's Int64 does: towards zero, saturated (the product
	// in ns then wraps, as the SDK's does).
	var ms int64
	switch p := v * 1000; {
	case p >= 0x1p63:
		ms = math.MaxInt64
	case p < -0x1p63:
		ms = math.MinInt64
	default:
		ms = int64(p)
	}
	return time.Unix(0, ms*1e6).UTC(), nil
}

// skipStr reads a string without unescaping it: the bytes are left as
// they are, for a later pass.
func (d *jsonDecoder) skipStr() error {
	if err := d.expect('"'); err != nil {
		return err
	}
	for {
		end := bytes.IndexByte(d.b[d.i:], '"')
		if end < 0 {
			d.i = len(d.b)
			return d.errorf("a string that does not end")
		}
		end += d.i
		d.i = end + 1
		// A quote after an odd number of backslashes is escaped.
		bs := 0
		for j := end - 1; j >= 0 && d.b[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return nil
		}
	}
}

// skip reads one value of any kind, leaving the bytes as they are.
func (d *jsonDecoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested more than %d deep", maxDepth)
	}
	switch c := d.peek(); {
	case c == '"':
		return d.skipStr()
	case c == '{' || c == '[':
		d.i++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if d.peek() == end {
			d.i++
			return nil
		}
		for {
			if c == '{' {
				if err := d.skipStr(); err != nil {
					return err
				}
				if err := d.expect(':'); err != nil {
					return err
				}
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.i++
			case end:
				d.i++
				return nil
			default:
				return d.errorf("%q or ',' expected", end)
			}
		}
	case c == 'n':
		if d.null() {
			return nil
		}
	case c == 't':
		if d.literal("true") {
			return nil
		}
	case c == 'f':
		if d.literal("false") {
			return nil
		}
	case c == '-' || '0' <= c && c <= '9':
		_, err := d.number()
		return err
	}
	if d.i >= len(d.b) {
		return d.errorf("a value expected, the answer ends")
	}
	return d.errorf("a value expected, %q found", d.b[d.i])
}

// object reads an object, calling field for each key with the decoder
// at its value; field must read the value. null is an empty object.
func (d *jsonDecoder) object(field func(key []byte) error) error {
	if d.null() {
		return nil
	}
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		k, _, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errorf("'}' or ',' expected")
		}
	}
}

// array reads an array (null is an empty one), calling elem for each
// element; n is the element's index.
func (d *jsonDecoder) array(elem func(n int) error) error {
	if d.null() {
		return nil
	}
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := elem(n); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.errorf("']' or ',' expected")
		}
	}
}

// elements counts the elements of the array next (0 for null), reading
// ahead, and refuses an array whose bytes could not hold that many
// elements of least bytes each. The decoder is left where it was, or past
// the array if it has no elements.
func (d *jsonDecoder) elements(least int) (n, size int, err error) {
	at := d.i
	err = d.array(func(int) error { n++; return d.skip(1) })
	size = d.i - at
	if err != nil || n == 0 {
		return 0, 0, err
	}
	d.i = at
	if n > (size+1)/least { // +1: the last element has no comma
		return 0, 0, d.errorf("%d elements in %d bytes, each of %d bytes at least", n, size, least)
	}
	return n, size, nil
}

// decodeGetRecordsJSON decodes a GetRecords answer in JSON. It writes
// over buf (escapes are undone in place); the records do not share it.
func decodeGetRecordsJSON(buf []byte) (*kinesis.GetRecordsOutput, error) {
	a, err := decodeAnswerJSON(buf, "NextShardIterator")
	if err != nil {
		return nil, err
	}
	return &kinesis.GetRecordsOutput{Records: a.records, NextShardIterator: a.next, MillisBehindLatest: a.behind, ChildShards: a.children}, nil
}

// decodeEventJSON decodes a SubscribeToShardEvent's payload in JSON, as
// decodeGetRecordsJSON does an answer.
func decodeEventJSON(buf []byte) (*types.SubscribeToShardEvent, error) {
	a, err := decodeAnswerJSON(buf, "ContinuationSequenceNumber")
	if err != nil {
		return nil, err
	}
	return &types.SubscribeToShardEvent{Records: a.records, ContinuationSequenceNumber: a.next, MillisBehindLatest: a.behind, ChildShards: a.children}, nil
}

// answerParts is what a GetRecords answer and a SubscribeToShardEvent hold:
// records, where to go on from (NextShardIterator, or
// ContinuationSequenceNumber: nextKey), the lag and the children.
type answerParts struct {
	records  []types.Record
	next     *string
	behind   *int64
	children []types.ChildShard
}

func decodeAnswerJSON(buf []byte, nextKey string) (answerParts, error) {
	d := &jsonDecoder{b: buf}
	var out answerParts
	seen := false
	err := d.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "Records":
			seen = true
			if out.records, err = d.records(); err != nil {
				return fmt.Errorf("Records: %w", err)
			}
		case nextKey:
			out.next = nil
			if d.null() {
				break
			}
			s, err := d.text()
			if err != nil {
				return fmt.Errorf("%s: %w", nextKey, err)
			}
			// Its own copy: it outlives the answer.
			out.next = aws.String(strings.Clone(s))
		case "MillisBehindLatest":
			out.behind = nil
			if d.null() {
				break
			}
			v, err := d.int()
			if err != nil {
				return fmt.Errorf("MillisBehindLatest: %w", err)
			}
			out.behind = &v
		case "ChildShards":
			if out.children, err = d.childShards(); err != nil {
				return fmt.Errorf("ChildShards: %w", err)
			}
		default:
			if err := d.skip(1); err != nil {
				return fmt.Errorf("%s: %w", shortKey(string(k)), err)
			}
		}
		return nil
	})
	if err != nil {
		return answerParts{}, err
	}
	if d.ws(); d.i != len(d.b) {
		return answerParts{}, d.errorf("%d bytes after the answer", len(d.b)-d.i)
	}
	if !seen {
		return answerParts{}, errors.New("no Records in the answer")
	}
	return out, nil
}

// records reads the Records array: each record's fields where they lie
// (Data still base64), then every record's data and strings into one
// buffer of their own.
func (d *jsonDecoder) records() ([]types.Record, error) {
	n, size, err := d.elements(minJSONRecord)
	if err != nil || n == 0 {
		return nil, err
	}
	recs := make([]types.Record, n)
	strs := make([]string, 0, min(2*n, size/minJSONRecordString+1))
	times := make([]time.Time, 0, min(n, size/minJSONRecordTime+1))
	need := 0 // the bytes of the records' own buffer
	err = d.array(func(i int) error {
		r := &recs[i]
		err := d.object(func(k []byte) error {
			var err error
			switch string(k) {
			case "Data":
				var s []byte
				if d.null() {
					r.Data = nil
				} else if s, _, err = d.str(); err == nil {
					r.Data = s // base64 for now
					need += base64.StdEncoding.DecodedLen(len(s))
				}
			case "SequenceNumber", "PartitionKey":
				var s string
				if d.null() { // nil, as the SDK has it
					if string(k) == "SequenceNumber" {
						r.SequenceNumber = nil
					} else {
						r.PartitionKey = nil
					}
				} else if s, err = d.text(); err == nil && s == "" && string(k) == "SequenceNumber" {
					err = errors.New("empty")
				} else if err == nil {
					need += len(s)
					strs = append(strs, s)
					p := &strs[len(strs)-1]
					if string(k) == "SequenceNumber" {
						r.SequenceNumber = p
					} else {
						r.PartitionKey = p
					}
				}
			case "ApproximateArrivalTimestamp":
				var t time.Time
				if d.null() {
					r.ApproximateArrivalTimestamp = nil
				} else if t, err = d.timestamp(); err == nil {
					times = append(times, t)
					r.ApproximateArrivalTimestamp = &times[len(times)-1]
				}
			case "EncryptionType":
				var s string
				if s, err = d.text(); err == nil {
					switch e := types.EncryptionType(s); e {
					case types.EncryptionTypeNone:
						r.EncryptionType = types.EncryptionTypeNone
					case types.EncryptionTypeKms:
						r.EncryptionType = types.EncryptionTypeKms
					default:
						need += len(s)
						r.EncryptionType = e
					}
				}
			default:
				err = d.skip(1)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", shortKey(string(k)), err)
			}
			return nil
		})
		if err == nil && r.SequenceNumber == nil {
			err = errors.New("no SequenceNumber")
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The records' own buffer: the data decoded into it, the strings
	// copied. EncryptionType NONE and KMS are the constants'.
	own := make([]byte, need)
	at := 0
	str := func(s string) string {
		n := copy(own[at:], s)
		p := own[at : at+n]
		at += n
		return unsafe.String(unsafe.SliceData(p), len(p))
	}
	for i := range recs {
		r := &recs[i]
		if r.Data == nil {
			r.Data = []byte{}
		} else if len(r.Data) > 0 {
			text := r.Data
			n, err := base64.StdEncoding.Decode(own[at:at+base64.StdEncoding.DecodedLen(len(text))], text)
			if err != nil {
				return nil, fmt.Errorf("record %d: Data: %w", i, err)
			}
			r.Data = own[at : at+n : at+n]
			at += n
		}
		if r.SequenceNumber != nil {
			*r.SequenceNumber = str(*r.SequenceNumber)
		}
		if r.PartitionKey != nil && *r.PartitionKey != "" {
			*r.PartitionKey = str(*r.PartitionKey)
		}
		switch r.EncryptionType {
		case types.EncryptionTypeNone, types.EncryptionTypeKms, "":
		default:
			r.EncryptionType = types.EncryptionType(str(string(r.EncryptionType)))
		}
	}
	return recs, nil
}

func (d *jsonDecoder) childShards() ([]types.ChildShard, error) {
	n, _, err := d.elements(minJSONChildShard)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]types.ChildShard, n)
	err = d.array(func(i int) error {
		c := &out[i]
		err := d.object(func(k []byte) error {
			var err error
			switch string(k) {
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
				err = d.skip(1)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", shortKey(string(k)), err)
			}
			return nil
		})
		if err == nil && c.ShardId == nil {
			err = errors.New("no ShardId")
		}
		if err != nil {
			return fmt.Errorf("child shard %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// shardID reads a shard id, a string of its own.
func (d *jsonDecoder) shardID() (string, error) {
	s, err := d.text()
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", d.errorf("an empty shard id")
	}
	return strings.Clone(s), nil
}

func (d *jsonDecoder) parentShards() ([]string, error) {
	n, _, err := d.elements(minJSONShardID)
	if err != nil || n == 0 {
		return nil, err
	}
	ids := make([]string, n)
	err = d.array(func(i int) error {
		var err error
		ids[i], err = d.shardID()
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (d *jsonDecoder) hashKeyRange() (*types.HashKeyRange, error) {
	if d.null() {
		return nil, nil
	}
	h := &types.HashKeyRange{}
	err := d.object(func(k []byte) error {
		var s string
		var err error
		switch string(k) {
		case "StartingHashKey":
			if s, err = d.text(); err == nil {
				h.StartingHashKey = aws.String(strings.Clone(s))
			}
		case "EndingHashKey":
			if s, err = d.text(); err == nil {
				h.EndingHashKey = aws.String(strings.Clone(s))
			}
		default:
			err = d.skip(1)
		}
		return err
	})
	return h, err
}

// decodeJSONError reads __type and message (or Message) from an error
// answer in JSON; empty when the body is not a JSON object.
func decodeJSONError(buf []byte) (code, msg string) {
	d := &jsonDecoder{b: buf}
	_ = d.object(func(k []byte) error {
		switch string(k) {
		case "__type", "code":
			s, err := d.text()
			code = strings.Clone(s)
			return err
		case "message", "Message":
			s, err := d.text()
			msg = strings.Clone(s)
			return err
		}
		return d.skip(1)
	})
	return code, msg
}

// encodeGetRecordsJSON writes {"ShardIterator": it, "Limit": limit}.
func encodeGetRecordsJSON(it string, limit *int32) []byte {
	b := make([]byte, 0, len(it)+40)
	b = append(b, `{"ShardIterator":`...)
	b = appendJSONString(b, it)
	if limit != nil {
		b = append(b, `,"Limit":`...)
		b = strconv.AppendInt(b, int64(*limit), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
