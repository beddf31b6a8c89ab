package filter

import (
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects in data, as
// encoding/json does: deeper data is not JSON here.
const maxDepth = 10000

// scanner checks that data is JSON and, in the same pass, evaluates the
// slots of the nodes its fields reach. Fields no pattern names are
// checked and skipped. It allocates nothing unless a string to test is
// long and escaped.
type scanner struct {
	b     []byte
	i     int
	depth int
	flags []uint8
	tmp   [256]byte // unescaped strings; the partition key
}

// document scans data as a JSON object for the data field e of root and
// records the result in root's slots for it. It reports false when data is
// not a JSON object.
func (s *scanner) document(root *node, e *entry) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' || !s.value(root, e) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i, a value of field e of node n (e nil: a
// value to skip).
func (s *scanner) value(n *node, e *entry) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; c {
	case '{':
		if e == nil || e.child == nil {
			return s.object(nil)
		}
		if !s.object(e.child) {
			return false
		}
		for _, si := range e.kids {
			f := &s.flags[n.base+si]
			*f |= fSeen
			if *f&fHeld == 0 && e.child.eval(s.flags, n.slots[si].group) {
				*f |= fHeld
			}
		}
		return true
	case '[':
		// Paths skip arrays: each element is a value of the same field.
		s.i++
		if s.depth++; s.depth > maxDepth {
			return false
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			s.depth--
			return true
		}
		for {
			if !s.value(n, e) {
				return false
			}
			s.ws()
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case ',':
				s.i++
				s.ws()
			case ']':
				s.i++
				s.depth--
				return true
			default:
				return false
			}
		}
	case '"':
		want := e != nil && len(e.leaf) > 0
		v, ok := s.str(want)
		if ok && want {
			s.leaf(n, e, kString, v)
		}
		return ok
	case 't', 'f', 'n':
		var w string
		switch c {
		case 't':
			w = "true"
		case 'f':
			w = "false"
		default:
			w = "null"
		}
		if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
			return false
		}
		s.i += len(w)
		if e != nil {
			s.leaf(n, e, kLiteral, s.b[s.i-len(w):s.i])
		}
		return true
	default:
		v, ok := s.number()
		if ok && e != nil {
			s.leaf(n, e, kNumber, v)
		}
		return ok
	}
}

// object scans the object at s.i for node n (nil: an object to skip).
func (s *scanner) object(n *node) bool {
	s.i++
	if s.depth++; s.depth > maxDepth {
		return false
	}
	if n != nil {
		clear(s.flags[n.base : n.base+len(n.slots)])
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		key, ok := s.str(n != nil)
		if !ok {
			return false
		}
		var e *entry
		if n != nil {
			e = n.lookup(key)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.value(n, e) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// leaf tests a scalar value of field e of node n against e's leaf slots.
func (s *scanner) leaf(n *node, e *entry, k kind, v []byte) {
	var num number
	for _, si := range e.leaf {
		f := &s.flags[n.base+si]
		*f |= fSeen
		if *f&fHeld == 0 && n.slots[si].match(k, v, &num) {
			*f |= fHeld
		}
	}
}

// str scans the string at s.i. With want, it returns its value, unescaped
// (into s.tmp, or a new slice if longer); without, only whether it is
// well formed.
func (s *scanner) str(want bool) ([]byte, bool) {
	s.i++
	start := s.i
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], true
		case c == '\\':
			return s.escaped(start, i, want)
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// escaped goes on with a string from its first backslash at i.
func (s *scanner) escaped(start, i int, want bool) ([]byte, bool) {
	var out []byte
	if want {
		out = append(s.tmp[:0], s.b[start:i]...)
	}
	b := s.b
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			if want {
				out = append(out, c)
			}
			i++
			continue
		}
		// A backslash.
		if i+1 >= len(b) {
			return nil, false
		}
		r, n := rune(0), 2
		switch b[i+1] {
		case '"', '\\', '/':
			r = rune(b[i+1])
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			if r, ok = u4(b[i:]); !ok {
				return nil, false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				// A surrogate pair is one rune; a lone surrogate is
				// U+FFFD, as encoding/json has it.
				if r1, ok := u4(b[i+6:]); ok {
					if d := utf16.DecodeRune(r, r1); d != utf8.RuneError {
						r, n = d, 12
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
		default:
			return nil, false
		}
		if want {
			out = utf8.AppendRune(out, r)
		}
		i += n
	}
	return nil, false
}

// u4 decodes the escape \uXXXX at the start of b.
func u4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number scans the number at s.i, as JSON writes numbers.
func (s *scanner) number() ([]byte, bool) {
	b, i := s.b, s.i
	digits := func() bool {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	v := b[s.i:i]
	s.i = i
	return v, true
}
