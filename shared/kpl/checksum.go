package kpl

import (
	"bytes"
	"crypto/md5"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/klauspost/cpuid/v2"
	md5simd "github.com/minio/md5-simd"
)

// Checking an aggregate's MD5 is most of what de-aggregating it costs: MD5
// is serial within one message. CheckAll checks the aggregates of a whole
// GetRecords answer side by side instead, in the vector lanes of one core
// (minio/md5-simd: 16 messages at once with AVX-512, 8 with AVX2), and
// DeaggregateChecked then skips the check for those found good.

// minSIMD is the smallest aggregate worth a lane: below it, handing the
// message to the lanes costs more than hashing it.
const minSIMD = 4 << 10

// lanes is how many messages are hashed side by side per round.
const lanes = 16

// free keeps the sets of lanes hashers for reuse: a hasher is registered
// with the server once (Reset starts a new message), and registering and
// closing one is slow (it waits on the server), so at most maxSets sets are
// ever made. A caller that finds none free checks nothing (CheckAll returns
// nil, and each aggregate is checked by crypto/md5 as before).
const maxSets = 8

var (
	free = make(chan *[lanes]md5simd.Hasher, maxSets)
	made atomic.Int32
)

func getHashers() *[lanes]md5simd.Hasher {
	select {
	case hs := <-free:
		return hs
	default:
	}
	if made.Add(1) <= maxSets {
		return new([lanes]md5simd.Hasher)
	}
	made.Add(-1)
	return nil
}

func putHashers(hs *[lanes]md5simd.Hasher) { free <- hs } // room for every set made

var (
	simdOnce   sync.Once
	simdServer md5simd.Server // nil without AVX2
)

func server() md5simd.Server {
	simdOnce.Do(func() {
		if cpuid.CPU.Supports(cpuid.AVX2) {
			simdServer = md5simd.NewServer()
		}
	})
	return simdServer
}

// CheckAll returns, for each of recs, whether it is a KPL aggregate whose
// MD5 checksum is known to be right (false: not an aggregate, a wrong
// checksum, or not checked here; DeaggregateChecked then checks it as
// Deaggregate does). It returns nil when it checked nothing: fewer than two
// aggregates of minSIMD bytes, a CPU without AVX2, or every set of hashers
// in use by other shards.
func CheckAll(recs []types.Record) []bool {
	var idx []int
	for i := range recs {
		d := recs[i].Data
		if len(d) >= minSIMD && string(d[:len(Magic)]) == Magic {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 {
		return nil
	}
	srv := server()
	if srv == nil {
		return nil
	}
	hs := getHashers()
	if hs == nil {
		return nil
	}
	defer putHashers(hs)
	good := make([]bool, len(recs))
	var sum [md5.Size]byte
	for len(idx) > 0 {
		n := min(len(idx), lanes)
		for j := range n {
			d := recs[idx[j]].Data
			if hs[j] == nil {
				hs[j] = srv.NewHash()
			}
			hs[j].Reset()
			hs[j].Write(d[len(Magic) : len(d)-md5.Size])
		}
		for j := range n {
			d := recs[idx[j]].Data
			good[idx[j]] = bytes.Equal(hs[j].Sum(sum[:0]), d[len(d)-md5.Size:])
		}
		idx = idx[n:]
	}
	return good
}

// checksumOK checks an aggregate's MD5 alone.
func checksumOK(d []byte) bool {
	sum := md5.Sum(d[len(Magic) : len(d)-md5.Size])
	return bytes.Equal(sum[:], d[len(d)-md5.Size:])
}
