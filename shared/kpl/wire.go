package kpl

import (
	"sync"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// userRec is one user record of an aggregate as parsed: indexes into the
// tables and its data, which aliases the aggregate's bytes.
type userRec struct {
	pk, ehk uint64
	hasEHK  bool
	data    []byte
}

// aggregate is an AggregatedRecord as parsed from its protobuf.
type aggregate struct {
	pks, ehks []string
	recs      []userRec
}

// scratch reuses the parse tables between aggregates: they are cleared
// (nothing aliases an old aggregate) before they go back.
var scratch = sync.Pool{New: func() any { return new(aggregate) }}

func putScratch(a *aggregate) {
	if cap(a.recs) > 1<<16 { // an outsized aggregate's tables are not kept
		return
	}
	clear(a.pks)
	clear(a.ehks)
	clear(a.recs)
	scratch.Put(a)
}

// parseAggregate reads the protobuf of a KPL aggregate (kinesis-aggregation's
// records.proto: partition_key_table = 1, explicit_hash_key_table = 2,
// records = 3 with partition_key_index = 1, explicit_hash_key_index = 2,
// data = 3, tags = 4 with key = 1, value = 2) with the rules proto.Unmarshal
// applies to it: unknown fields and fields of the wrong wire type are
// skipped, a later scalar beats an earlier one, and the proto2 required
// fields (a record's partition_key_index and data, a tag's key) must be
// there (strings of proto2 are not checked for UTF-8). It allocates nothing per user record: strings and data alias body,
// which must not change while they are in use (Kinesis answers are not
// written to).
//
// It parses into a, whose tables are reset first and reused.
func parseAggregate(body []byte, a *aggregate) bool {
	a.pks, a.ehks, a.recs = a.pks[:0], a.ehks[:0], a.recs[:0]
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 || !validNumber(num) {
			return false
		}
		body = body[n:]
		if typ == protowire.BytesType && num >= 1 && num <= 3 {
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return false
			}
			body = body[m:]
			switch num {
			case 1, 2:
				if num == 1 {
					a.pks = append(a.pks, alias(v))
				} else {
					a.ehks = append(a.ehks, alias(v))
				}
			case 3:
				r, ok := parseUserRecord(v)
				if !ok {
					return false
				}
				a.recs = append(a.recs, r)
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, body)
		if m < 0 {
			return false
		}
		body = body[m:]
	}
	return true
}

func parseUserRecord(b []byte) (userRec, bool) {
	var r userRec
	var hasPK, hasData bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || !validNumber(num) {
			return r, false
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
			if num == 1 {
				r.pk, hasPK = v, true
			} else {
				r.ehk, r.hasEHK = v, true
			}
		case (num == 3 || num == 4) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
			if num == 3 {
				r.data, hasData = v[:len(v):len(v)], true // an append by a handler cannot reach the next record
			} else if !validTag(v) {
				return r, false
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
		}
	}
	return r, hasPK && hasData
}

// validTag checks a Tag message: well-formed, with its required key.
func validTag(b []byte) bool {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || !validNumber(num) {
			return false
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			_, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return false
			}
			hasKey = hasKey || num == 1
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return hasKey
}

// alias is b as a string without a copy; b must not change afterwards.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// validNumber is proto.Unmarshal's rule for a field number: 1 to 2^29-1.
func validNumber(n protowire.Number) bool {
	return n >= protowire.MinValidNumber && n <= protowire.MaxValidNumber
}
