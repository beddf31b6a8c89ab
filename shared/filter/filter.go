package filter

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
)

// Filter is a compiled set of patterns. It is immutable, and Match may be
// called from any number of goroutines at once.
type Filter struct {
	root      *node      // the record: partitionKey and data
	pkEntry   *entry     // root's partitionKey field; nil when no pattern names it
	dataEntry *entry     // root's data field; nil when no pattern looks at data
	patterns  []pattern  // in the order given
	nflags    int        // flags a match needs, one per slot
	ordered   []*pattern // patterns that ignore data first
}

type pattern struct {
	group int  // the pattern's group in root
	data  bool // whether it looks at data anywhere, $or included
}

// The patterns of a Filter are merged into one tree of nodes, one node per
// object path ("", "data", "data.order", ...), so that a record's data is
// scanned once whatever the number of patterns. A node's slots are its
// fields' conditions (one per field per pattern object); its groups are
// the pattern objects at that path: an AND of slots and of $or lists of
// other groups of the same node.
type node struct {
	base    int // index of the node's first slot flag
	entries []*entry
	slots   []slot
	groups  []group
}

// entry is one field name of a node, with the slots that test it: leaf
// slots test its values, kid slots its objects (through child).
type entry struct {
	key   string
	leaf  []int
	kids  []int
	child *node
}

type slot struct {
	rules       []rule // for a leaf slot: any may match a value
	existsFalse bool   // a leaf slot also holds when the field has no value
	group       int    // for a kid slot: the group of child it tests; -1 for a leaf slot
	absent      bool   // whether the slot holds when the field is absent
	data        bool   // a root slot on the data field
}

type group struct {
	and []int   // slots that must all hold
	or  [][]int // for each $or, groups of which one must hold
}

// Flags of a slot during a match.
const (
	fSeen uint8 = 1 << iota // the field had a value (a leaf slot) or an object (a kid slot)
	fHeld                   // some value or object satisfied the slot
)

// Match reports whether a record passes the filter: whether any pattern
// matches it (Lambda ORs the filters). A nil *Filter matches every record.
// data is the record's data as put (Lambda matches it after base64
// decoding); a pattern that looks at data matches only when data is a
// JSON object.
func (f *Filter) Match(partitionKey string, data []byte) bool {
	if f == nil {
		return true
	}
	var stack [256]uint8
	var flags []uint8
	if f.nflags <= len(stack) {
		flags = stack[:f.nflags]
	} else {
		flags = make([]uint8, f.nflags)
	}
	s := scanner{b: data, flags: flags}
	root := f.root
	if f.pkEntry != nil {
		s.leaf(root, f.pkEntry, kString, append(s.tmp[:0], partitionKey...))
	}
	scan := false
	for _, p := range f.ordered {
		if !p.data {
			if root.eval(flags, p.group) {
				return true
			}
			continue
		}
		if !scan && root.mayMatch(flags, p.group) {
			scan = true
		}
	}
	if !scan || !s.document(root, f.dataEntry) {
		return false
	}
	for _, p := range f.ordered {
		if p.data && root.eval(flags, p.group) {
			return true
		}
	}
	return false
}

// eval reports whether group g of n holds, given the flags of n's slots.
func (n *node) eval(flags []uint8, g int) bool {
	grp := &n.groups[g]
	for _, si := range grp.and {
		if !n.holds(flags, si) {
			return false
		}
	}
	for _, alts := range grp.or {
		if !slices.ContainsFunc(alts, func(a int) bool { return n.eval(flags, a) }) {
			return false
		}
	}
	return true
}

func (n *node) holds(flags []uint8, si int) bool {
	f := flags[n.base+si]
	return f&fHeld != 0 || (f&fSeen == 0 && n.slots[si].absent)
}

// mayMatch reports whether root group g can still hold once data is known:
// false when one of its partitionKey conditions already fails.
func (n *node) mayMatch(flags []uint8, g int) bool {
	for _, si := range n.groups[g].and {
		if !n.slots[si].data && !n.holds(flags, si) {
			return false
		}
	}
	return true
}

// emptyHolds reports whether group g holds for an object without fields.
func (n *node) emptyHolds(g int) bool {
	grp := &n.groups[g]
	for _, si := range grp.and {
		if !n.slots[si].absent {
			return false
		}
	}
	for _, alts := range grp.or {
		if !slices.ContainsFunc(alts, n.emptyHolds) {
			return false
		}
	}
	return true
}

// touches reports whether group g (a root group) tests the data field.
func (n *node) touches(g int, data *entry) bool {
	if data == nil {
		return false
	}
	grp := &n.groups[g]
	for _, si := range grp.and {
		if slices.Contains(data.kids, si) {
			return true
		}
	}
	for _, alts := range grp.or {
		if slices.ContainsFunc(alts, func(a int) bool { return n.touches(a, data) }) {
			return true
		}
	}
	return false
}

func (n *node) entry(key string) *entry {
	for _, e := range n.entries {
		if e.key == key {
			return e
		}
	}
	e := &entry{key: key}
	n.entries = append(n.entries, e)
	return e
}

func (n *node) lookup(key []byte) *entry {
	for _, e := range n.entries {
		if string(key) == e.key {
			return e
		}
	}
	return nil
}

func (n *node) addLeaf(e *entry, s slot) int {
	n.slots = append(n.slots, s)
	e.leaf = append(e.leaf, len(n.slots)-1)
	return len(n.slots) - 1
}

func (n *node) addKid(e *entry, g int) int {
	n.slots = append(n.slots, slot{group: g})
	e.kids = append(e.kids, len(n.slots)-1)
	return len(n.slots) - 1
}

// layout gives every node its range of flags and every kid slot its
// absent value, children first.
func (f *Filter) layout() {
	var walk func(n *node)
	walk = func(n *node) {
		n.base = f.nflags
		f.nflags += len(n.slots)
		for _, e := range n.entries {
			if e.child == nil {
				continue
			}
			walk(e.child)
			for _, si := range e.kids {
				n.slots[si].absent = e.child.emptyHolds(n.slots[si].group)
			}
		}
	}
	walk(f.root)
	f.pkEntry = nil
	for _, e := range f.root.entries {
		if e.key == keyPartitionKey {
			f.pkEntry = e
		}
	}
	for i := range f.patterns {
		if !f.patterns[i].data {
			f.ordered = append(f.ordered, &f.patterns[i])
		}
	}
	for i := range f.patterns {
		if f.patterns[i].data {
			f.ordered = append(f.ordered, &f.patterns[i])
		}
	}
}

// A value's JSON type, as rules see it.
type kind uint8

const (
	kString  kind = iota // a string, unescaped
	kNumber              // a number, as written
	kLiteral             // true, false or null
)

type opKind uint8

const (
	opExact       opKind = iota // a value of the list: same type, same text
	opPrefix                    // {"prefix": s}
	opSuffix                    // {"suffix": s}
	opIgnoreCase                // {"equals-ignore-case": s}
	opAnythingBut               // {"anything-but": v or [v...]}
	opNumeric                   // {"numeric": [op, x, ...]}
	opExists                    // {"exists": true}
)

// lit is a value as the data writes it: a string's text, or a number or
// literal as written.
type lit struct {
	kind kind
	s    string
}

type rule struct {
	op     opKind
	kind   kind   // for opExact
	s      string // for opExact, opPrefix, opSuffix, opIgnoreCase
	not    []lit  // for opAnythingBut
	lo, hi float64
	loIn   bool   // lo is inclusive
	hiIn   bool   // hi is inclusive
	fold   []byte // for opIgnoreCase: s as bytes
}

// number is a data number parsed once, when a numeric rule first needs it.
type number struct {
	done, ok bool
	f        float64
}

func (r *rule) match(k kind, v []byte, num *number) bool {
	switch r.op {
	case opExact:
		return k == r.kind && string(v) == r.s
	case opPrefix:
		return k == kString && len(v) >= len(r.s) && string(v[:len(r.s)]) == r.s
	case opSuffix:
		return k == kString && len(v) >= len(r.s) && string(v[len(v)-len(r.s):]) == r.s
	case opIgnoreCase:
		return k == kString && bytes.EqualFold(v, r.fold)
	case opAnythingBut:
		for _, l := range r.not {
			if l.kind == k && string(v) == l.s {
				return false
			}
		}
		return true
	case opNumeric:
		if k != kNumber {
			return false
		}
		if !num.done {
			num.done = true
			f, err := strconv.ParseFloat(string(v), 64)
			// A number too large for a float64 still compares, as an infinity.
			num.f, num.ok = f, err == nil || errors.Is(err, strconv.ErrRange)
		}
		x := num.f
		return num.ok &&
			(x > r.lo || (r.loIn && x == r.lo)) &&
			(x < r.hi || (r.hiIn && x == r.hi))
	case opExists:
		return true
	}
	return false
}

func (sl *slot) match(k kind, v []byte, num *number) bool {
	for i := range sl.rules {
		if sl.rules[i].match(k, v, num) {
			return true
		}
	}
	return false
}
