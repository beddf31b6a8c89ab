package kpl

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
)

// HashRange is a shard's inclusive hash key range; the zero value means no
// filtering.
//
// A hash key is a 128-bit unsigned integer. Deaggregate treats a nil Start as
// 0 and a nil End as 2^128-1 when the other one is set, and clamps values
// outside [0, 2^128-1] to those bounds; ParseHashRange never produces such
// values.
type HashRange struct{ Start, End *big.Int }

// maxHashKey is 2^128-1, the largest hash key.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// ParseHashRange parses a shard's StartingHashKey and EndingHashKey, decimal
// strings as Kinesis returns them in ListShards (types.HashKeyRange). Each
// must be an integer in [0, 2^128-1] and start must not be after end; the
// error names the offending value.
func ParseHashRange(start, end string) (HashRange, error) {
	s, err := parseBound("starting", start)
	if err != nil {
		return HashRange{}, err
	}
	e, err := parseBound("ending", end)
	if err != nil {
		return HashRange{}, err
	}
	if s.Cmp(e) > 0 {
		return HashRange{}, fmt.Errorf("kpl: hash key range: starting hash key %q is after ending hash key %q", start, end)
	}
	return HashRange{Start: s, End: e}, nil
}

func parseBound(which, v string) (*big.Int, error) {
	x, ok := new(big.Int).SetString(v, 10)
	if !ok {
		return nil, fmt.Errorf("kpl: %s hash key %q is not a decimal integer", which, v)
	}
	if x.Sign() < 0 || x.Cmp(maxHashKey) > 0 {
		return nil, fmt.Errorf("kpl: %s hash key %q is outside [0, 2^128-1]", which, v)
	}
	return x, nil
}

// IsZero reports whether hr is the zero HashRange, which filters nothing.
func (hr HashRange) IsZero() bool { return hr.Start == nil && hr.End == nil }

// Contains reports whether the hash key k (a decimal string) lies in hr. The
// zero HashRange contains every key. A key that is not a decimal integer in
// [0, 2^128-1] is contained (Deaggregate keeps such records).
func (hr HashRange) Contains(k string) bool {
	if hr.IsZero() {
		return true
	}
	key, ok := parseHashKey(k)
	if !ok {
		return true
	}
	lo, hi := hr.bounds()
	return key.in(lo, hi)
}

// PartitionKeyHash returns the hash key Kinesis derives from a partition key
// (its MD5 read as a big-endian unsigned 128-bit integer), in decimal.
func PartitionKeyHash(partitionKey string) string {
	k := hashPartitionKey(partitionKey)
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return new(big.Int).SetBytes(b[:]).String()
}

// hashKey is a 128-bit hash key as two halves, so that comparing keys needs
// no big.Int.
type hashKey struct{ hi, lo uint64 }

func (k hashKey) less(o hashKey) bool {
	return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo)
}

// in reports lo <= k <= hi.
func (k hashKey) in(lo, hi hashKey) bool { return !k.less(lo) && !hi.less(k) }

// bounds returns hr's bounds as hash keys, clamped to [0, 2^128-1], nil
// Start meaning 0 and nil End meaning 2^128-1. It does not allocate.
func (hr HashRange) bounds() (lo, hi hashKey) {
	return toHashKey(hr.Start, hashKey{}), toHashKey(hr.End, hashKey{^uint64(0), ^uint64(0)})
}

func toHashKey(x *big.Int, ifNil hashKey) hashKey {
	switch {
	case x == nil:
		return ifNil
	case x.Sign() <= 0:
		return hashKey{}
	case x.BitLen() > 128:
		return hashKey{^uint64(0), ^uint64(0)}
	}
	var b [16]byte
	x.FillBytes(b[:])
	return hashKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// hashPartitionKey is the hash key of a partition key: MD5 of its bytes as
// a big-endian 128-bit unsigned integer.
func hashPartitionKey(pk string) hashKey {
	var buf [256]byte // most partition keys fit: hash them without allocating
	var sum [md5.Size]byte
	if len(pk) <= len(buf) {
		n := copy(buf[:], pk)
		sum = md5.Sum(buf[:n])
	} else {
		sum = md5.Sum([]byte(pk))
	}
	return hashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// parseHashKey parses an explicit hash key: decimal digits only (leading
// zeros allowed), value at most 2^128-1. Anything else is not ok.
func parseHashKey(s string) (k hashKey, ok bool) {
	if s == "" {
		return hashKey{}, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return hashKey{}, false
		}
		// k = k*10 + digit, failing on overflow past 128 bits.
		carry, lo := bits.Mul64(k.lo, 10)
		over, hi := bits.Mul64(k.hi, 10)
		if over != 0 {
			return hashKey{}, false
		}
		var c1, c2, c3 uint64
		hi, c1 = bits.Add64(hi, carry, 0)
		lo, c2 = bits.Add64(lo, uint64(c-'0'), 0)
		hi, c3 = bits.Add64(hi, c2, 0)
		if c1|c3 != 0 {
			return hashKey{}, false
		}
		k = hashKey{hi, lo}
	}
	return k, true
}
