package kpl

import (
	"bytes"
	"crypto/md5"
	"sync"

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

// free keeps a few sets of lanes hashers for reuse: a hasher is
// registered with the server once (Reset starts a new message) and must be
// closed to be let go, so the sets are kept in a bounded list, not a
// sync.Pool, and a set the list has no room for is closed.
var free = make(chan *[lanes]md5simd.Hasher, 8)

func getHashers() *[lanes]md5simd.Hasher {
	select {
	case hs := <-free:
		return hs
	default:
		return new([lanes]md5simd.Hasher)
	}
}

func putHashers(hs *[lanes]md5simd.Hasher) {
	select {
	case free <- hs:
	default:
		for _, h := range hs {
			if h != nil {
				h.Close()
			}
		}
	}
}

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
// aggregates of minSIMD bytes, or a CPU without AVX2.
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
	good := make([]bool, len(recs))
	hs := getHashers()
	defer putHashers(hs)
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
