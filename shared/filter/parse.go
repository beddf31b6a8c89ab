package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of Lambda's FilterCriteria (see doc.go).
const (
	// MaxPatterns is how many patterns one event source mapping takes by
	// default (a quota increase allows 10; Shardline keeps the default).
	MaxPatterns = 5
	// MaxPatternLen is the longest Filter.Pattern string Lambda accepts.
	MaxPatternLen = 4096
)

// The top-level keys a Kinesis pattern may use.
const (
	keyData         = "data"
	keyPartitionKey = "partitionKey"
	keyOr           = "$or"
)

const allowedOperators = "allowed prefix, suffix, anything-but, numeric, exists, equals-ignore-case, or a list of values"

// PatternError is the error Parse returns for a pattern it refuses. Its
// message names the pattern (its 1-based position among the -filter flags
// and its text), where in the pattern the problem is, the problem and what
// is allowed instead.
type PatternError struct {
	Index   int    // 1-based position among the patterns given to Parse
	Pattern string // the pattern as given
	Path    string // where in the pattern ("data.order.type"); empty for the whole pattern
	Problem string // what is wrong, and what is allowed
}

func (e *PatternError) Error() string {
	text := e.Pattern
	if len(text) > maxQuoted {
		text = text[:maxQuoted] + "..."
	}
	if e.Path == "" {
		return fmt.Sprintf("-filter %d %s: %s", e.Index, text, e.Problem)
	}
	return fmt.Sprintf("-filter %d %s: %s: %s", e.Index, text, e.Path, e.Problem)
}

// maxQuoted is how much of a pattern an error message quotes.
const maxQuoted = 200

// problem is a pattern error before it knows which pattern it is in.
type problem struct{ path, msg string }

func (p *problem) Error() string { return p.path + ": " + p.msg }

func fail(path, format string, args ...any) error {
	return &problem{path: path, msg: fmt.Sprintf(format, args...)}
}

// Parse compiles Lambda FilterCriteria patterns, each the text of one
// Filters[].Pattern. No patterns gives a nil *Filter, which matches every
// record, as an event source mapping without filter criteria does. A
// refused pattern gives a *PatternError.
func Parse(patterns []string) (*Filter, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	if len(patterns) > MaxPatterns {
		return nil, fmt.Errorf("-filter: %d patterns: Lambda allows at most %d filters per event source mapping; combine alternatives with a list of values or $or", len(patterns), MaxPatterns)
	}
	c := &compiler{f: &Filter{root: &node{}}}
	for i, text := range patterns {
		if err := c.pattern(text); err != nil {
			pe := &PatternError{Index: i + 1, Pattern: text, Problem: err.Error()}
			var p *problem
			if errors.As(err, &p) {
				pe.Path, pe.Problem = p.path, p.msg
			}
			return nil, pe
		}
	}
	c.f.layout()
	return c.f, nil
}

type compiler struct{ f *Filter }

func (c *compiler) pattern(text string) error {
	if n := utf8.RuneCountInString(text); n > MaxPatternLen {
		return fmt.Errorf("%d characters: Lambda allows at most %d per pattern", n, MaxPatternLen)
	}
	v, err := decode(text)
	if err != nil {
		return fmt.Errorf("not JSON: %v; want a JSON object such as {\"data\":{\"type\":[\"buy\"]}}", err)
	}
	if v.kind != kindObject {
		return errors.New("not a JSON object: want one such as {\"data\":{\"type\":[\"buy\"]}}")
	}
	root := c.f.root
	g, err := c.object(root, v.obj, "", true)
	if err != nil {
		return err
	}
	c.f.patterns = append(c.f.patterns, pattern{group: g, data: root.touches(g, c.f.dataEntry)})
	return nil
}

// object compiles the members of a pattern object into a new group of n
// and returns its index. top is true for the pattern itself, whose keys
// are the record's (data, partitionKey) rather than the data's.
func (c *compiler) object(n *node, members []member, path string, top bool) (int, error) {
	if len(members) == 0 {
		if top {
			return 0, errors.New("empty pattern: it needs at least one of data, partitionKey or $or; to match every record, give no -filter")
		}
		return 0, fail(path, "empty object: give at least one field, or leave %s out", path)
	}
	g := len(n.groups)
	n.groups = append(n.groups, group{})
	var grp group
	for _, m := range members {
		p := join(path, m.key)
		switch {
		case m.key == keyOr:
			alts, err := c.or(n, m.val, p, top)
			if err != nil {
				return 0, err
			}
			grp.or = append(grp.or, alts)
		case top && m.key == keyData:
			if m.val.kind != kindObject {
				return 0, fail(p, "must be an object of data fields, such as {\"type\":[\"buy\"]}: Lambda matches Kinesis data as JSON")
			}
			e := n.entry(keyData)
			if e.child == nil {
				e.child = &node{}
				c.f.dataEntry = e
			}
			cg, err := c.object(e.child, m.val.obj, p, false)
			if err != nil {
				return 0, err
			}
			si := n.addKid(e, cg)
			n.slots[si].data = true
			grp.and = append(grp.and, si)
		case top && m.key == keyPartitionKey:
			if m.val.kind != kindArray {
				return 0, fail(p, "must be a list of rules, such as [\"key-1\"] or [{\"prefix\":\"eu-\"}]: the partition key is a string")
			}
			s, err := leafSlot(m.val.arr, p)
			if err != nil {
				return 0, err
			}
			if err := stringRules(s, p); err != nil {
				return 0, err
			}
			grp.and = append(grp.and, n.addLeaf(n.entry(keyPartitionKey), s))
		case top:
			return 0, fail(p, "unknown key %q: allowed data (the record's data, as JSON), partitionKey or $or", m.key)
		case m.val.kind == kindArray:
			s, err := leafSlot(m.val.arr, p)
			if err != nil {
				return 0, err
			}
			grp.and = append(grp.and, n.addLeaf(n.entry(m.key), s))
		case m.val.kind == kindObject:
			e := n.entry(m.key)
			if e.child == nil {
				e.child = &node{}
			}
			cg, err := c.object(e.child, m.val.obj, p, false)
			if err != nil {
				return 0, err
			}
			grp.and = append(grp.and, n.addKid(e, cg))
		default:
			return 0, fail(p, "must be a list of rules, such as [\"buy\"], or an object of nested fields")
		}
	}
	n.groups[g] = grp
	return g, nil
}

// or compiles the alternatives of a $or into groups of n.
func (c *compiler) or(n *node, v value, path string, top bool) ([]int, error) {
	if v.kind != kindArray || len(v.arr) < 2 {
		return nil, fail(path, "must be a list of at least two objects, such as [{\"a\":[\"x\"]},{\"b\":[\"y\"]}]")
	}
	alts := make([]int, 0, len(v.arr))
	for i, a := range v.arr {
		p := path + "[" + strconv.Itoa(i) + "]"
		if a.kind != kindObject {
			return nil, fail(p, "must be an object of fields")
		}
		g, err := c.object(n, a.obj, p, top)
		if err != nil {
			return nil, err
		}
		alts = append(alts, g)
	}
	return alts, nil
}

// stringRules refuses, for the partition key, rules that no string can
// satisfy or that every string does: the key is always there, and always
// a string.
func stringRules(s slot, path string) error {
	const want = "the partition key is a string, always present: give strings, prefix, suffix, equals-ignore-case, anything-but of strings, or exists true"
	if s.existsFalse {
		return fail(path, "exists false never holds: %s", want)
	}
	for _, r := range s.rules {
		switch {
		case r.op == opExact && r.kind != kString:
			return fail(path, "%s never equals a string: %s", r.s, want)
		case r.op == opNumeric:
			return fail(path, "numeric never holds: %s", want)
		case r.op == opAnythingBut && slices.ContainsFunc(r.not, func(l lit) bool { return l.kind != kString }):
			return fail(path, "anything-but of a number always holds: %s", want)
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// leafSlot compiles a list of rules for one field.
func leafSlot(list []value, path string) (slot, error) {
	if len(list) == 0 {
		return slot{}, fail(path, "empty list: it matches nothing; give at least one value or rule (null is [null])")
	}
	s := slot{group: -1}
	for i, v := range list {
		p := path + "[" + strconv.Itoa(i) + "]"
		switch v.kind {
		case kindString:
			s.rules = append(s.rules, rule{op: opExact, kind: kString, s: v.s})
		case kindNumber:
			s.rules = append(s.rules, rule{op: opExact, kind: kNumber, s: v.s})
		case kindTrue, kindFalse, kindNull:
			s.rules = append(s.rules, rule{op: opExact, kind: kLiteral, s: v.s})
		case kindObject:
			r, existsFalse, err := operator(v.obj, p)
			if err != nil {
				return slot{}, err
			}
			if existsFalse {
				s.existsFalse = true
				continue
			}
			s.rules = append(s.rules, r)
		default:
			return slot{}, fail(p, "a list inside a list: give values or operator objects, %s", allowedOperators)
		}
	}
	s.absent = s.existsFalse
	return s, nil
}

// operator compiles one {"op": arg} object. existsFalse reports
// {"exists": false}, which is a property of the field, not a rule on a
// value.
func operator(members []member, path string) (r rule, existsFalse bool, err error) {
	if len(members) != 1 {
		return rule{}, false, fail(path, "an operator object takes exactly one operator, got %d: %s", len(members), allowedOperators)
	}
	op, arg := members[0].key, members[0].val
	path = join(path, op)
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		if arg.kind == kindObject {
			return rule{}, false, fail(path, "%s takes a string here: the nested forms (such as {\"equals-ignore-case\": ...}) are EventBridge's, not in Lambda's filter rule syntax", op)
		}
		if arg.kind != kindString {
			return rule{}, false, fail(path, "%s takes a string, such as {%q:\"us-\"}", op, op)
		}
		switch op {
		case "prefix":
			return rule{op: opPrefix, s: arg.s}, false, nil
		case "suffix":
			return rule{op: opSuffix, s: arg.s}, false, nil
		}
		return rule{op: opIgnoreCase, s: arg.s, fold: []byte(arg.s)}, false, nil
	case "exists":
		switch arg.kind {
		case kindTrue:
			return rule{op: opExists}, false, nil
		case kindFalse:
			return rule{}, true, nil
		}
		return rule{}, false, fail(path, "exists takes true or false")
	case "anything-but":
		return anythingBut(arg, path)
	case "numeric":
		r, err := numeric(arg, path)
		return r, false, err
	case "wildcard", "cidr", "shellstyle", "regexp":
		return rule{}, false, fail(path, "operator %q is not in Lambda's filter rule syntax: %s", op, allowedOperators)
	}
	return rule{}, false, fail(path, "unknown operator %q: %s", op, allowedOperators)
}

func anythingBut(arg value, path string) (rule, bool, error) {
	r := rule{op: opAnythingBut}
	add := func(v value, p string) error {
		switch v.kind {
		case kindString:
			r.not = append(r.not, lit{kString, v.s})
		case kindNumber:
			r.not = append(r.not, lit{kNumber, v.s})
		default:
			return fail(p, "anything-but takes a string, a number, or a list of them")
		}
		return nil
	}
	switch arg.kind {
	case kindObject:
		return rule{}, false, fail(path, "anything-but with an operator (prefix, suffix, equals-ignore-case, wildcard) is EventBridge's, not in Lambda's filter rule syntax: give a string, a number, or a list of them")
	case kindArray:
		if len(arg.arr) == 0 {
			return rule{}, false, fail(path, "empty list: anything-but takes a string, a number, or a non-empty list of them")
		}
		for i, v := range arg.arr {
			if err := add(v, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return rule{}, false, err
			}
		}
	default:
		if err := add(arg, path); err != nil {
			return rule{}, false, err
		}
	}
	return r, false, nil
}

// numeric compiles ["=", x], or one or two bounds such as [">", 10, "<=", 20].
func numeric(arg value, path string) (rule, error) {
	const want = "numeric takes [\"=\", x] or one or two bounds such as [\">\", 10, \"<=\", 20], with operators =, <, <=, >, >="
	if arg.kind != kindArray || len(arg.arr) == 0 || len(arg.arr)%2 != 0 || len(arg.arr) > 4 {
		return rule{}, fail(path, "%s", want)
	}
	r := rule{op: opNumeric, lo: math.Inf(-1), hi: math.Inf(1), loIn: true, hiIn: true}
	var hasLo, hasHi, hasEq bool
	for i := 0; i < len(arg.arr); i += 2 {
		o, n := arg.arr[i], arg.arr[i+1]
		p := path + "[" + strconv.Itoa(i) + "]"
		if o.kind != kindString {
			return rule{}, fail(p, "%s", want)
		}
		if n.kind != kindNumber {
			return rule{}, fail(path+"["+strconv.Itoa(i+1)+"]", "%s takes a number, got %s", o.s, n.describe())
		}
		x, err := strconv.ParseFloat(n.s, 64)
		if err != nil || math.IsInf(x, 0) {
			return rule{}, fail(path+"["+strconv.Itoa(i+1)+"]", "%s is out of range for a number", n.s)
		}
		switch o.s {
		case "=":
			hasEq = true
			r.lo, r.hi = x, x
		case ">", ">=":
			if hasLo {
				return rule{}, fail(p, "two lower bounds: %s", want)
			}
			hasLo, r.lo, r.loIn = true, x, o.s == ">="
		case "<", "<=":
			if hasHi {
				return rule{}, fail(p, "two upper bounds: %s", want)
			}
			hasHi, r.hi, r.hiIn = true, x, o.s == "<="
		default:
			return rule{}, fail(p, "unknown comparison %q: %s", o.s, want)
		}
	}
	if hasEq && len(arg.arr) != 2 {
		return rule{}, fail(path, "\"=\" stands alone: %s", want)
	}
	if r.lo > r.hi || (r.lo == r.hi && !(r.loIn && r.hiIn)) {
		return rule{}, fail(path, "the range is empty: no number is %s", describeRange(arg))
	}
	return r, nil
}

func describeRange(arg value) string {
	var b strings.Builder
	for i := 0; i+1 < len(arg.arr); i += 2 {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(arg.arr[i].s + " " + arg.arr[i+1].s)
	}
	return b.String()
}

// A decoded pattern value. Objects keep their members in order, and a key
// given twice keeps its last value, as Lambda does.
type value struct {
	kind valueKind
	s    string // a string's value, a number's text, or a literal
	arr  []value
	obj  []member
}

type member struct {
	key string
	val value
}

type valueKind uint8

const (
	kindString valueKind = iota
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindArray
	kindObject
)

func (v value) describe() string {
	switch v.kind {
	case kindString:
		return strconv.Quote(v.s)
	case kindArray:
		return "a list"
	case kindObject:
		return "an object"
	}
	return v.s
}

func decode(text string) (value, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if errors.Is(err, io.EOF) {
		return value{}, io.ErrUnexpectedEOF
	}
	if err != nil {
		return value{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return value{}, errors.New("text after the pattern object")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (value, error) {
	t, err := dec.Token()
	if err != nil {
		return value{}, err
	}
	switch t := t.(type) {
	case string:
		return value{kind: kindString, s: t}, nil
	case json.Number:
		return value{kind: kindNumber, s: string(t)}, nil
	case bool:
		if t {
			return value{kind: kindTrue, s: "true"}, nil
		}
		return value{kind: kindFalse, s: "false"}, nil
	case nil:
		return value{kind: kindNull, s: "null"}, nil
	case json.Delim:
		if t == '[' {
			v := value{kind: kindArray}
			for dec.More() {
				e, err := decodeValue(dec)
				if err != nil {
					return value{}, err
				}
				v.arr = append(v.arr, e)
			}
			_, err := dec.Token() // ']'
			return v, err
		}
		v := value{kind: kindObject}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return value{}, err
			}
			k := kt.(string)
			e, err := decodeValue(dec)
			if err != nil {
				return value{}, err
			}
			replaced := false
			for i := range v.obj {
				if v.obj[i].key == k {
					v.obj[i].val, replaced = e, true
				}
			}
			if !replaced {
				v.obj = append(v.obj, member{k, e})
			}
		}
		_, err := dec.Token() // '}'
		return v, err
	}
	return value{}, fmt.Errorf("unexpected token %v", t)
}
