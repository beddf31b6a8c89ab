package invoke

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shardline/shardline/shared/stream"
)

// Sizer measures, without marshalling, the JSON that Marshal writes for
// the event stream.Event builds: len(Marshal(stream.Event(src, recs))) ==
// EventSize(len(recs), Σ Record(&recs[i])), to the byte. The dispatcher
// uses it to keep each batch under Lambda's request limit. The zero Sizer
// is not ready: use NewSizer.
type Sizer struct {
	fixed int // a record's bytes that do not depend on the record
}

// NewSizer returns the Sizer for events from src.
func NewSizer(src stream.Source) Sizer {
	// The template is a record whose variable parts are as short as they
	// get: eventID ":", empty partition key and sequence number, empty
	// data (""), timestamp 0, no encryption type. Marshalled by the very
	// code Marshal runs, so the keys and constant values can never drift.
	ev := stream.Event(src, []stream.Record{{Data: []byte{}, ApproximateArrivalTimestamp: time.UnixMilli(0)}})
	er := newEventRecord(&ev.Records[0])
	b, _ := json.Marshal(er) // strings and bytes always marshal
	return Sizer{fixed: len(b)}
}

// encryptionTypeKey is what a record with an encryption type adds, besides
// the value.
const encryptionTypeKey = len(`,"encryptionType":""`)

// Record is the size of r's object in the event's Records array.
func (s Sizer) Record(r *stream.Record) int {
	n := s.fixed
	// eventID: the template's ":" becomes shardId:seq[:sub].
	n += jsonStringLen(r.ShardID) + jsonStringLen(r.SequenceNumber)
	if r.Aggregated {
		n += 1 + intLen(r.SubSequenceNumber)
	}
	n += jsonStringLen(r.PartitionKey) + jsonStringLen(r.SequenceNumber)
	if r.Data == nil {
		n += len("null") - len(`""`)
	} else {
		n += base64.StdEncoding.EncodedLen(len(r.Data))
	}
	n += epochSecondsLen(r.ApproximateArrivalTimestamp.UnixMilli()) - len("0")
	if r.EncryptionType != "" {
		n += encryptionTypeKey + jsonStringLen(r.EncryptionType)
	}
	return n
}

// Bound is at least Record(r), from the lengths alone (no string is
// scanned): every byte of a string may be escaped as \u00XX, six bytes.
// A batch whose bounds fit needs no exact count.
func (s Sizer) Bound(r *stream.Record) int {
	n := s.fixed + 6*(len(r.ShardID)+2*len(r.SequenceNumber)+len(r.PartitionKey)) +
		base64.StdEncoding.EncodedLen(len(r.Data)) + maxEpochSecondsLen
	if r.Aggregated {
		n += 1 + maxIntLen
	}
	if r.EncryptionType != "" {
		n += encryptionTypeKey + 6*len(r.EncryptionType)
	}
	return n
}

// The longest intLen and epochSecondsLen can be.
const (
	maxIntLen          = len("-9223372036854775808")
	maxEpochSecondsLen = len("-9223372036854775.808")
)

// EventSize is the size of an event of n records whose Record sizes add
// up to sum: {"Records":[…]} with a comma between records.
func EventSize(n, sum int) int {
	return len(`{"Records":[]}`) + sum + max(n-1, 0)
}

// jsonStringLen is how many bytes encoding/json writes for s inside its
// quotes, escaping as json.Marshal does (HTML characters too).
func jsonStringLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		b := s[i]
		if w := asciiWidth[b]; w != 0 {
			n += int(w)
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			n += len(`\ufffd`)
		case c == '\u2028' || c == '\u2029':
			n += len(`\u2028`)
		default:
			n += size
		}
		i += size
	}
	return n
}

// asciiWidth is what encoding/json writes for each ASCII byte; 0 for the
// bytes of multi-byte runes.
var asciiWidth = func() (t [256]uint8) {
	for b := range utf8.RuneSelf {
		switch {
		case b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&':
			t[b] = 1
		case b == '"', b == '\\', b == '\b', b == '\f', b == '\n', b == '\r', b == '\t':
			t[b] = 2
		default:
			t[b] = uint8(len(`\u0000`))
		}
	}
	return t
}()

// intLen is the length of strconv.FormatInt(v, 10).
func intLen(v int64) int {
	var buf [20]byte
	return len(strconv.AppendInt(buf[:0], v, 10))
}

// epochSecondsLen is len(EpochSeconds(ms)).
func epochSecondsLen(ms int64) int {
	n := 0
	if ms < 0 {
		n++
		ms = -ms
	}
	n += intLen(ms / 1000)
	if frac := ms % 1000; frac != 0 {
		digits := 3
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		n += 1 + digits
	}
	return n
}
