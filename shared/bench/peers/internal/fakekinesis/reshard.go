package fakekinesis

import (
	"encoding/binary"
	"math/big"
	"strconv"
	"strings"
)

// linkChildren gives each closed shard its children. The caller holds
// st.mu for writing, or st is not served yet.
func (st *Stream) linkChildren() {
	for _, p := range st.Shards {
		if p.ended {
			kids := st.childrenOf(p.ID)
			p.mu.Lock()
			p.children = kids
			p.mu.Unlock()
		}
	}
}

// childrenOf is the shards that name id as ParentShardID or
// AdjacentParentShardID (an empty list if the stream holds none); the
// caller holds st.mu.
func (st *Stream) childrenOf(id string) []childShard {
	kids := []childShard{}
	for _, c := range st.Shards {
		if c.ParentShardID != id && c.AdjacentParentShardID != id {
			continue
		}
		parents := []string{c.ParentShardID}
		if c.AdjacentParentShardID != "" {
			parents = append(parents, c.AdjacentParentShardID)
		}
		kids = append(kids, childShard{ID: c.ID, Parents: parents, Start: c.StartingHashKey, End: c.EndingHashKey})
	}
	return kids
}

// reshardOp answers SplitShard and MergeShards.
func (s *Server) reshardOp(op string, req *request, isCBOR bool) (out []byte, aerr *apiError) {
	switch op {
	case "SplitShard":
		aerr = s.withStream(req, func(st *Stream) *apiError { return s.split(st, req.ShardToSplit, req.NewStartingHashKey) })
	case "MergeShards":
		aerr = s.withStream(req, func(st *Stream) *apiError { return s.merge(st, req.ShardToMerge, req.AdjacentShardToMerge) })
	default:
		panic("fakekinesis: reshardOp " + op) // ServeHTTP calls it with its two only
	}
	if aerr == nil {
		out = encode(isCBOR, map[string]any{})
	}
	return out, aerr
}

// split closes a shard and adds two children, [its start, at-1] and [at,
// its end], as SplitShard does; the stream stays ACTIVE throughout.
func (s *Server) split(st *Stream, id, at string) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, aerr := openShard(st, id)
	if aerr != nil {
		return aerr
	}
	lo, hi := bounds(p)
	mid, ok := new(big.Int).SetString(at, 10)
	if !ok || mid.Cmp(lo) <= 0 || mid.Cmp(hi) > 0 {
		return errorf("InvalidArgumentException", "NewStartingHashKey %s must be above StartingHashKey %s and at most EndingHashKey %s of shard %s", at, p.StartingHashKey, p.EndingHashKey, id)
	}
	midLess := new(big.Int).Sub(mid, big.NewInt(1))
	s.reshardLocked(st, []*Shard{p}, [][2]*big.Int{{lo, midLess}, {mid, hi}})
	return nil
}

// merge closes two adjacent shards and adds one child over both ranges,
// as MergeShards does.
func (s *Server) merge(st *Stream, id, adjacent string) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	a, aerr := openShard(st, id)
	if aerr != nil {
		return aerr
	}
	b, aerr := openShard(st, adjacent)
	if aerr != nil {
		return aerr
	}
	if a == b {
		return errorf("InvalidArgumentException", "Shard %s cannot be merged with itself", id)
	}
	aLo, aHi := bounds(a)
	bLo, bHi := bounds(b)
	one := big.NewInt(1)
	lo, hi := aLo, bHi
	switch {
	case new(big.Int).Add(aHi, one).Cmp(bLo) == 0:
	case new(big.Int).Add(bHi, one).Cmp(aLo) == 0:
		lo, hi = bLo, aHi
	default:
		return errorf("InvalidArgumentException", "Shards %s and %s are not adjacent", id, adjacent)
	}
	s.reshardLocked(st, []*Shard{a, b}, [][2]*big.Int{{lo, hi}})
	return nil
}

// bounds is a shard's hash key range as numbers (the parsed range of
// Add, so a bound that did not parse is the end of the key space).
func bounds(sh *Shard) (lo, hi *big.Int) {
	num := func(k hashKey) *big.Int {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], k.hi)
		binary.BigEndian.PutUint64(b[8:], k.lo)
		return new(big.Int).SetBytes(b[:])
	}
	return num(sh.lo), num(sh.hi)
}

// openShard is the open shard of that id; the caller holds st.mu.
func openShard(st *Stream, id string) (*Shard, *apiError) {
	i, ok := st.index[id]
	if !ok {
		return nil, noShard(st, id)
	}
	if sh := st.Shards[i]; !sh.ended {
		return sh, nil
	}
	return nil, errorf("ResourceInUseException", "Shard %s in stream %s under account %s is closed", id, st.Name, AccountID)
}

// reshardLocked adds children over the given ranges, numbered after the
// stream's highest shard number, with parents[0] (and parents[1]) as their
// parents, then closes the parents: their readers and subscribers get the
// children. The caller holds st.mu for writing, so no put is under way.
func (s *Server) reshardLocked(st *Stream, parents []*Shard, ranges [][2]*big.Int) {
	next := 0
	for _, sh := range st.Shards {
		if n, err := strconv.Atoi(strings.TrimPrefix(sh.ID, "shardId-")); err == nil && n >= next {
			next = n + 1
		}
	}
	if next < len(st.Shards) {
		next = len(st.Shards)
	}
	now := s.now()
	for k, r := range ranges {
		c := newShard(next+k, r[0], r[1], now)
		c.ParentShardID = parents[0].ID
		if len(parents) > 1 {
			c.AdjacentParentShardID = parents[1].ID
		}
		c.lo, c.hi = parseRange(c.StartingHashKey, c.EndingHashKey)
		c.lastSeq = c.StartingSequence
		st.index[c.ID] = len(st.Shards)
		st.Shards = append(st.Shards, c)
	}
	for _, p := range parents {
		kids := st.childrenOf(p.ID)
		p.mu.Lock()
		p.EndingSequence = p.lastSeq
		p.ended, p.children = true, kids
		p.wakeLocked()
		p.mu.Unlock()
	}
}
