package kpl

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	protov1 "github.com/golang/protobuf/proto"
	"google.golang.org/protobuf/proto"
)

// MaxRecordSize is Kinesis's 1 MiB limit on one record's data plus
// partition key, in bytes.
const MaxRecordSize = 1 << 20

// UserRecord is one record as a producer means it, before aggregation.
type UserRecord struct {
	// PartitionKey decides the record's shard, unless ExplicitHashKey is set.
	PartitionKey string
	// ExplicitHashKey, if not empty, is the decimal hash key that places the
	// record instead of its partition key's MD5.
	ExplicitHashKey string
	// Data is the payload.
	Data []byte
}

// ErrEmpty is returned when asked to aggregate no records.
var ErrEmpty = errors.New("kpl: no user records to aggregate")

// Aggregate encodes recs as one KPL aggregated record (magic + protobuf +
// md5), in order. Partition keys and explicit hash keys are de-duplicated
// into the tables. It fails with ErrEmpty if recs is empty. It does not
// check the result against MaxRecordSize; Aggregator does.
func Aggregate(recs []UserRecord) ([]byte, error) {
	a := Aggregator{
		Limit:  math.MaxInt,
		recs:   make([]UserRecord, 0, len(recs)),
		pkIdx:  make([]uint64, 0, len(recs)),
		ehkIdx: make([]int64, 0, len(recs)),
	}
	for _, r := range recs {
		a.Add(r)
	}
	return a.Flush()
}

// Aggregator accumulates user records into one aggregated record, and says
// when the next one would not fit in its size limit. A producer adds records
// until Add returns false, then sends Flush's bytes as the data of one
// Kinesis record under PartitionKey (and ExplicitHashKey, if any), and goes
// on adding to the emptied Aggregator.
//
// The zero value is ready to use with the limit MaxRecordSize. An Aggregator
// keeps the Data slices it is given, without copying, until Flush; it is not
// safe for concurrent use.
type Aggregator struct {
	// Limit is the most bytes one aggregated record may take: the encoded
	// data plus the carrier's partition key, as Kinesis counts them. Zero
	// means MaxRecordSize. Change it only while the Aggregator is empty.
	Limit int

	recs     []UserRecord
	pkIdx    []uint64 // per record: index in pkTable
	ehkIdx   []int64  // per record: index in ehkTable, -1 for none
	pkTable  []string
	ehkTable []string
	pkMap    map[string]uint64
	ehkMap   map[string]uint64
	size     int // protobuf bytes so far

	// Reused by Flush.
	msgs []records.Record
	ptrs []*records.Record
	idx  []uint64
}

// NewAggregator returns an empty Aggregator with the given Limit (0 means
// MaxRecordSize).
func NewAggregator(limit int) *Aggregator { return &Aggregator{Limit: limit} }

// Len is the number of user records added since the last Flush.
func (a *Aggregator) Len() int { return len(a.recs) }

// Size is the length in bytes of what Flush would return now, 0 when empty.
func (a *Aggregator) Size() int {
	if len(a.recs) == 0 {
		return 0
	}
	return overhead + a.size
}

// PartitionKey is the partition key to put the aggregate under: the first
// user record's, as the KPL does ("" when empty). Read it before Flush.
func (a *Aggregator) PartitionKey() string {
	if len(a.recs) == 0 {
		return ""
	}
	return a.recs[0].PartitionKey
}

// ExplicitHashKey is the explicit hash key to put the aggregate under: the
// first user record's ("" when it has none or when empty). Read it before
// Flush.
func (a *Aggregator) ExplicitHashKey() string {
	if len(a.recs) == 0 {
		return ""
	}
	return a.recs[0].ExplicitHashKey
}

func (a *Aggregator) limit() int {
	if a.Limit <= 0 {
		return MaxRecordSize
	}
	return a.Limit
}

// Add adds rec unless that would take the aggregate past Limit, and reports
// whether it did. When Add returns false the caller should Flush and add rec
// again; if Len is 0 when Add returns false, rec alone is too big for Limit.
func (a *Aggregator) Add(rec UserRecord) bool {
	grow := 0
	pki, pkFound := a.pkMap[rec.PartitionKey]
	if !pkFound {
		pki = uint64(len(a.pkTable))
		grow += fieldSize(len(rec.PartitionKey))
	}
	var ehki uint64
	ehkNew := false
	if rec.ExplicitHashKey != "" {
		var ok bool
		ehki, ok = a.ehkMap[rec.ExplicitHashKey]
		if !ok {
			ehki = uint64(len(a.ehkTable))
			ehkNew = true
			grow += fieldSize(len(rec.ExplicitHashKey))
		}
	}
	// The Record message: partition_key_index, explicit_hash_key_index,
	// data, each a one-byte tag and its value.
	msg := 1 + varintSize(pki) + fieldSize(len(rec.Data))
	if rec.ExplicitHashKey != "" {
		msg += 1 + varintSize(ehki)
	}
	grow += fieldSize(msg)

	carrierKey := len(rec.PartitionKey)
	if len(a.recs) > 0 {
		carrierKey = len(a.recs[0].PartitionKey)
	}
	if overhead+a.size+grow+carrierKey > a.limit() {
		return false
	}

	if a.pkMap == nil {
		a.pkMap = make(map[string]uint64)
		a.ehkMap = make(map[string]uint64)
	}
	if !pkFound {
		a.pkMap[rec.PartitionKey] = pki
		a.pkTable = append(a.pkTable, rec.PartitionKey)
	}
	e := int64(-1)
	if rec.ExplicitHashKey != "" {
		if ehkNew {
			a.ehkMap[rec.ExplicitHashKey] = ehki
			a.ehkTable = append(a.ehkTable, rec.ExplicitHashKey)
		}
		e = int64(ehki)
	}
	a.recs = append(a.recs, rec)
	a.pkIdx = append(a.pkIdx, pki)
	a.ehkIdx = append(a.ehkIdx, e)
	a.size += grow
	return true
}

// Flush encodes the records added since the last Flush as one KPL
// aggregated record (magic + protobuf + md5) and empties the Aggregator for
// reuse. It fails with ErrEmpty if there is nothing to flush.
func (a *Aggregator) Flush() ([]byte, error) {
	n := len(a.recs)
	if n == 0 {
		return nil, ErrEmpty
	}
	a.msgs = resize(a.msgs, n)
	a.ptrs = resize(a.ptrs, n)
	a.idx = resize(a.idx, 2*n)
	for i := range a.recs {
		m := &a.msgs[i]
		*m = records.Record{Data: a.recs[i].Data}
		if m.Data == nil {
			m.Data = []byte{} // data is a required field: present even if empty
		}
		a.idx[2*i] = a.pkIdx[i]
		m.PartitionKeyIndex = &a.idx[2*i]
		if e := a.ehkIdx[i]; e >= 0 {
			a.idx[2*i+1] = uint64(e)
			m.ExplicitHashKeyIndex = &a.idx[2*i+1]
		}
		a.ptrs[i] = m
	}
	agg := records.AggregatedRecord{
		PartitionKeyTable:    a.pkTable,
		ExplicitHashKeyTable: a.ehkTable,
		Records:              a.ptrs,
	}
	out := make([]byte, 0, overhead+a.size)
	out = append(out, Magic...)
	// AllowPartial skips the required-field check (every Record has its
	// partition_key_index and data set above), which costs an allocation
	// per Record with these legacy generated types.
	out, err := proto.MarshalOptions{AllowPartial: true}.MarshalAppend(out, protov1.MessageV2(&agg))
	a.reset()
	if err != nil {
		return nil, fmt.Errorf("kpl: encoding aggregate: %w", err)
	}
	sum := md5.Sum(out[len(Magic):])
	return append(out, sum[:]...), nil
}

// reset empties a, keeping its buffers but none of the caller's data.
func (a *Aggregator) reset() {
	clear(a.recs)
	clear(a.pkTable)
	clear(a.ehkTable)
	clear(a.msgs)
	clear(a.ptrs)
	a.recs = a.recs[:0]
	a.pkIdx = a.pkIdx[:0]
	a.ehkIdx = a.ehkIdx[:0]
	a.pkTable = a.pkTable[:0]
	a.ehkTable = a.ehkTable[:0]
	clear(a.pkMap)
	clear(a.ehkMap)
	a.size = 0
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// varintSize is the length of x as a protobuf varint.
func varintSize(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// fieldSize is the length of a length-delimited protobuf field (one-byte
// tag, length, payload) whose payload is n bytes.
func fieldSize(n int) int { return 1 + varintSize(uint64(n)) + n }
