package fakekinesis

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"time"
)

// hashKey is a 128-bit hash key as two halves.
type hashKey struct{ hi, lo uint64 }

func (k hashKey) less(o hashKey) bool { return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo) }

var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// parseHashKey reads a decimal hash key in [0, 2^128-1].
func parseHashKey(s string) (hashKey, bool) {
	x, ok := new(big.Int).SetString(s, 10)
	if !ok || x.Sign() < 0 || x.Cmp(maxHashKey) > 0 {
		return hashKey{}, false
	}
	var b [16]byte
	x.FillBytes(b[:])
	return hashKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

// parseRange reads a shard's hash key range; a bound that does not parse
// is taken as the end of the whole range.
func parseRange(start, end string) (lo, hi hashKey) {
	lo, ok := parseHashKey(start)
	if !ok {
		lo = hashKey{}
	}
	hi, ok = parseHashKey(end)
	if !ok {
		hi = hashKey{^uint64(0), ^uint64(0)}
	}
	return lo, hi
}

// partitionKeyHash is what Kinesis routes a record by: the MD5 of its
// partition key as a big-endian 128-bit integer.
func partitionKeyHash(pk string) hashKey {
	sum := md5.Sum([]byte(pk))
	return hashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// seqDigits is the length of a Kinesis sequence number (56 decimal digits,
// e.g. 49590338271490256608559692538361571095921575989136588898).
const seqDigits = 56

// AddEmptyStream adds an empty, active stream of n shards whose hash key
// ranges split [0, 2^128-1] evenly, as CreateStream does, with shard ids
// shardId-000000000000 onwards and 56-digit sequence numbers. It fails if
// a stream of that name exists.
func (s *Server) AddEmptyStream(name string, n int) error {
	if n < 1 {
		return fmt.Errorf("stream %s: %d shards", name, n)
	}
	s.mu.RLock()
	_, exists := s.streams[name]
	s.mu.RUnlock()
	if exists {
		return fmt.Errorf("Stream %s under account %s already exists.", name, AccountID)
	}
	created := s.now()
	st := &Stream{Name: name, Created: created.Truncate(time.Millisecond)}
	step := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = maxHashKey
		}
		st.Shards = append(st.Shards, newShard(i, start, end, created))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.streams[name]; exists {
		return fmt.Errorf("Stream %s under account %s already exists.", name, AccountID)
	}
	s.addLocked(st)
	return nil
}

// newShard is shard number i, over [start, end], created at t.
func newShard(i int, start, end *big.Int, t time.Time) *Shard {
	return &Shard{
		ID:              fmt.Sprintf("shardId-%012d", i),
		StartingHashKey: start.String(),
		EndingHashKey:   end.String(),
		// "49" + creation time (20 digits) + shard index (4) + a counter
		// (30), every one 56 digits: numeric order is string order, and a
		// child's numbers are above its parents'.
		StartingSequence: fmt.Sprintf("49%020d%04d%030d", t.UnixNano(), i%10000, 0),
	}
}

// Remove drops a stream, its consumers and their subscriptions (no-op if
// absent).
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[name]; st != nil {
		s.dropLocked(st)
	}
}

// nextSeq is the decimal number after seq, as long as seq (or one digit
// longer when seq is all nines).
func nextSeq(seq string) string {
	if seq == "" {
		seq = "0"
	}
	b := []byte(seq)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}

// putResult is where one put record went.
type putResult struct{ shard, seq string }

// maxPutRecords is the total of Data + PartitionKey that one PutRecords
// call may carry, as Kinesis allows.
const maxPutRecords = 5 << 20

// put routes each entry to the open shard whose hash key range holds its
// ExplicitHashKey or the MD5 of its partition key, and appends it there
// with the next sequence number of that shard and the arrival time now.
// Entries of one shard keep their order. Each shard is locked once, for
// the appending and encoding of its entries only, and its subscribers are
// woken. A split or merge waits for puts under way (the stream's read
// lock), so no record lands in a closed shard.
func (s *Server) put(st *Stream, entries []putEntry) ([]putResult, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	total := 0
	target := make([]int, len(entries))
	for i, e := range entries {
		if n := len(e.PartitionKey); n < 1 || n > 256 {
			return nil, errorf("ValidationException", "1 validation error detected: Value at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256 and greater than or equal to 1", i+1)
		}
		if len(e.Data) > 1<<20 {
			return nil, errorf("ValidationException", "1 validation error detected: Value at 'records.%d.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576", i+1)
		}
		total += len(e.Data) + len(e.PartitionKey)
		var key hashKey
		if e.ExplicitHashKey != "" {
			k, ok := parseHashKey(e.ExplicitHashKey)
			if !ok {
				return nil, errorf("InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", e.ExplicitHashKey)
			}
			key = k
		} else {
			key = partitionKeyHash(e.PartitionKey)
		}
		target[i] = -1
		for j, sh := range st.Shards {
			if sh.EndingSequence == "" && !key.less(sh.lo) && !sh.hi.less(key) {
				target[i] = j
				break
			}
		}
		if target[i] < 0 {
			return nil, errorf("InternalFailure", "no open shard of %s holds hash key %x%016x", st.Name, key.hi, key.lo)
		}
	}
	if total > maxPutRecords {
		return nil, errorf("InvalidArgumentException", "Records size exceeds 5 MB limit")
	}
	arrival := s.now().Truncate(time.Millisecond)
	out := make([]putResult, len(entries))
	done := make([]bool, len(st.Shards))
	for i := range entries {
		j := target[i]
		if done[j] {
			continue
		}
		done[j] = true
		sh := st.Shards[j]
		sh.mu.Lock()
		for k := i; k < len(entries); k++ {
			if target[k] != j {
				continue
			}
			e := &entries[k]
			sh.lastSeq = nextSeq(sh.lastSeq)
			r := Record{SequenceNumber: sh.lastSeq, PartitionKey: e.PartitionKey, Data: e.Data, Arrival: arrival}
			sh.Records = append(sh.Records, r)
			sh.json = append(sh.json, encodeRecordJSON(&r))
			sh.cbor = append(sh.cbor, encodeRecordCBOR(&r))
			sh.size = append(sh.size, len(r.Data)+len(r.PartitionKey))
			out[k] = putResult{shard: sh.ID, seq: r.SequenceNumber}
		}
		sh.wakeLocked()
		sh.mu.Unlock()
	}
	return out, nil
}
