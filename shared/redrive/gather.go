package redrive

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/shardline/shardline/shared/stream"
)

// held is a message taken from the source and what is left of it.
type held struct {
	msg     *Message
	shard   string
	pending int   // records of it not yet done
	bad     error // why it cannot be cleaned up: unreadable, incomplete, past retention, not handled
	done    bool  // cleaned up (or queued for it)
}

// item is one user record gathered, with the messages holding it.
type item struct {
	rec    stream.Record
	owners []*held
}

// pieces are the chunks of one record too large for a message.
type pieces struct {
	chunks []Chunk
	owners []*held
}

// gather is one round's records, per shard, without duplicates.
type gather struct {
	items  map[string]*item // key → record
	pieces map[string]*pieces
	msgs   []*held
	ranges map[string][]*Range // shard → Lambda metadata (for the dry run)
	bytes  int64
	dups   int64
}

func newGather() *gather {
	return &gather{items: map[string]*item{}, pieces: map[string]*pieces{}, ranges: map[string][]*Range{}}
}

func key(r *stream.Record) string {
	return r.ShardID + "/" + r.SequenceNumber + "/" + strconv.FormatInt(r.SubSequenceNumber, 10)
}

// add records recs as held by h. seen holds the records done in earlier
// rounds: a duplicate of one is done already.
func (g *gather) add(h *held, recs []stream.Record, seen map[string]bool) {
	for i := range recs {
		r := recs[i]
		k := key(&r)
		if seen[k] {
			g.dups++
			continue
		}
		if it, ok := g.items[k]; ok {
			g.dups++
			if !slices.Contains(it.owners, h) {
				it.owners = append(it.owners, h)
				h.pending++
			}
			continue
		}
		g.items[k] = &item{rec: r, owners: []*held{h}}
		h.pending++
		g.bytes += int64(len(r.Data) + len(r.PartitionKey) + len(r.SequenceNumber) + 64)
	}
}

func (g *gather) addChunks(h *held, cs []Chunk) {
	for _, c := range cs {
		k := key(&c.Record)
		p := g.pieces[k]
		if p == nil {
			p = &pieces{}
			g.pieces[k] = p
		}
		p.chunks = append(p.chunks, c)
		if !slices.Contains(p.owners, h) {
			p.owners = append(p.owners, h)
		}
		g.bytes += int64(len(c.Record.Data) + 64)
	}
}

// join puts together the records that came in chunks; a record whose
// chunks do not cover its data leaves its messages where they are.
func (g *gather) join(seen map[string]bool) {
	for k, p := range g.pieces {
		slices.SortFunc(p.chunks, func(a, b Chunk) int { return cmp.Compare(a.Offset, b.Offset) })
		size := p.chunks[0].Size
		data := make([]byte, 0, size)
		ok := true
		for _, c := range p.chunks {
			switch {
			case c.Size != size:
				ok = false
			case c.Offset < int64(len(data)) && c.Offset+int64(len(c.Record.Data)) <= int64(len(data)):
				continue // the same chunk twice (a destination written twice)
			case c.Offset != int64(len(data)):
				ok = false
			default:
				data = append(data, c.Record.Data...)
			}
		}
		if !ok || int64(len(data)) != size {
			for _, h := range p.owners {
				if h.bad == nil {
					h.bad = fmt.Errorf("record %s of %s came in chunks that cover %d of its %d bytes: the other parts were not found", p.chunks[0].Record.Position(), p.chunks[0].Record.ShardID, len(data), size)
				}
			}
			continue
		}
		r := p.chunks[0].Record
		r.Data = data
		for _, h := range p.owners {
			g.add(h, []stream.Record{r}, seen)
		}
		delete(g.pieces, k)
	}
}

// shards returns each shard's records in order: by sequence number, then
// sub-sequence number, so that each partition key is in the order it was
// put. A record that shares its sequence number with another is a user
// record of an aggregate (its event id and batchItemFailures identifier
// carry the sub-sequence number).
func (g *gather) shards() map[string][]*item {
	out := map[string][]*item{}
	for _, it := range g.items {
		out[it.rec.ShardID] = append(out[it.rec.ShardID], it)
	}
	for _, its := range out {
		slices.SortFunc(its, func(a, b *item) int {
			if c := stream.CompareSeq(a.rec.SequenceNumber, b.rec.SequenceNumber); c != 0 {
				return c
			}
			return cmp.Compare(a.rec.SubSequenceNumber, b.rec.SubSequenceNumber)
		})
		for i := range its {
			if i > 0 && its[i].rec.SequenceNumber == its[i-1].rec.SequenceNumber {
				its[i].rec.Aggregated, its[i-1].rec.Aggregated = true, true
			}
		}
	}
	return out
}
