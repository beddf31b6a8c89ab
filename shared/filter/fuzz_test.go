package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// fuzzPatterns cover every rule, nesting, arrays and $or.
var fuzzPatterns = []string{
	`{"data": {"a": ["x", 1, true, null, ""]}}`,
	`{"data": {"a": [{"prefix": "x"}, {"suffix": "z"}], "b": [{"equals-ignore-case": "Ab"}]}}`,
	`{"data": {"a": [{"anything-but": ["x", 1]}]}}`,
	`{"data": {"n": [{"numeric": [">", -1, "<=", 10]}], "m": [{"numeric": ["=", 0]}]}}`,
	`{"data": {"a": [{"exists": true}], "b": [{"exists": false}]}}`,
	`{"data": {"o": {"a": ["x"], "p": {"b": [{"exists": false}]}}}}`,
	`{"data": {"$or": [{"a": ["x"]}, {"o": {"n": [{"numeric": ["<", 0]}]}}], "c": [{"exists": false}, "y"]}}`,
	`{"partitionKey": [{"prefix": "k"}], "data": {"o": {"a": [{"anything-but": "x"}]}}}`,
	`{"$or": [{"partitionKey": ["k1"]}, {"data": {"a": ["x"]}}]}`,
	`{"partitionKey": [{"anything-but": ["k1"]}]}`,
}

// FuzzMatch checks Match, one pattern at a time and with five at once,
// against a plain evaluator over encoding/json's decoding of the data
// (refMatch), and so the scanner's idea of JSON against json.Valid.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		benchRecord, `{}`, `{"a":"x"}`, `{"a":["y",{"b":1}],"b":"aB"}`, `{"n":10,"m":-0}`, `{"n":1e400,"m":0.0}`,
		`{"o":[{"a":"x"},{"p":{"b":1}}]}`, `{"o":{"a":"x","p":5}}`, `{"o":{"n":-1}}`, `{"c":"y","a":"q"}`,
		`{"a":"x\u0000y\ud800\udc00\ud800"}`, `{"a":"\xff"}`, `[{"a":"x"}]`, `"x"`, `{"a":1,}`, `{"a" : [ [ "x" ] ] }`,
	} {
		f.Add("k1", []byte(s))
	}
	filters := make([]*Filter, len(fuzzPatterns))
	refs := make([]map[string]any, len(fuzzPatterns))
	for i, p := range fuzzPatterns {
		var err error
		if filters[i], err = Parse([]string{p}); err != nil {
			f.Fatalf("Parse(%s): %v", p, err)
		}
		if err := decodeNumbers([]byte(p), &refs[i]); err != nil {
			f.Fatal(err)
		}
	}
	five, err := Parse(fuzzPatterns[:5])
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pk string, data []byte) {
		if hasDuplicateKeys(data) {
			t.Skip("a key twice in one object: the reference keeps the last value, Match any")
		}
		var doc any
		isObject := json.Valid(data) && decodeNumbers(data, &doc) == nil
		if _, ok := doc.(map[string]any); !ok {
			isObject = false
		}
		anyOfFive := false
		for i := range filters {
			want := refMatch(refs[i], pk, doc, isObject)
			if got := filters[i].Match(pk, data); got != want {
				t.Fatalf("pattern %s, partition key %q, data %q: got %v, want %v", fuzzPatterns[i], pk, data, got, want)
			}
			if i < 5 {
				anyOfFive = anyOfFive || want
			}
		}
		if got := five.Match(pk, data); got != anyOfFive {
			t.Fatalf("the first five patterns, data %q: got %v, want %v", data, got, anyOfFive)
		}
	})
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("text after the value")
	}
	return nil
}

// hasDuplicateKeys reports whether valid JSON data repeats a key in an
// object.
func hasDuplicateKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj  bool
		key  bool // the next string is a key
		seen map[string]bool
	}
	var stack []*frame
	for {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if k, ok := t.(string); ok {
				if top.seen[k] {
					return true
				}
				top.seen[k] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
		switch t {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, key: true, seen: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].key = true
			}
		}
	}
}

// refMatch is the package's semantics (doc.go) written plainly over
// decoded values: pattern p against a record.
func refMatch(p map[string]any, pk string, doc any, isObject bool) bool {
	if refTouchesData(p) && !isObject {
		return false
	}
	return refTop(p, pk, doc)
}

func refTouchesData(p map[string]any) bool {
	if _, ok := p["data"]; ok {
		return true
	}
	if alts, ok := p["$or"].([]any); ok {
		for _, a := range alts {
			if refTouchesData(a.(map[string]any)) {
				return true
			}
		}
	}
	return false
}

func refTop(p map[string]any, pk string, doc any) bool {
	for k, v := range p {
		var ok bool
		switch k {
		case "$or":
			for _, a := range v.([]any) {
				ok = ok || refTop(a.(map[string]any), pk, doc)
			}
		case "partitionKey":
			ok = refLeaf(v.([]any), []any{pk})
		case "data":
			ok = refObject(v.(map[string]any), doc)
		}
		if !ok {
			return false
		}
	}
	return true
}

// refObject matches a pattern object against a field's value: against one
// of its objects (arrays flattened), or as an empty object if it has none.
func refObject(p map[string]any, v any) bool {
	objs := flatten(v, true)
	if len(objs) == 0 {
		return refOne(p, map[string]any{})
	}
	for _, o := range objs {
		if refOne(p, o.(map[string]any)) {
			return true
		}
	}
	return false
}

func refOne(p map[string]any, obj map[string]any) bool {
	for k, v := range p {
		var ok bool
		switch v := v.(type) {
		case []any:
			if k == "$or" {
				for _, a := range v {
					ok = ok || refOne(a.(map[string]any), obj)
				}
			} else if x, present := obj[k]; present {
				ok = refLeaf(v, flatten(x, false))
			} else {
				ok = refLeaf(v, nil)
			}
		case map[string]any:
			ok = refObject(v, obj[k])
		}
		if !ok {
			return false
		}
	}
	return true
}

// flatten lists the objects (objects true) or the other values in v,
// looking into arrays.
func flatten(v any, objects bool) []any {
	switch v := v.(type) {
	case nil:
		if objects {
			return nil
		}
		return []any{nil}
	case []any:
		var out []any
		for _, e := range v {
			out = append(out, flatten(e, objects)...)
		}
		return out
	case map[string]any:
		if objects {
			return []any{v}
		}
		return nil
	}
	if objects {
		return nil
	}
	return []any{v}
}

func refLeaf(rules []any, values []any) bool {
	for _, r := range rules {
		if m, ok := r.(map[string]any); ok && m["exists"] == false && len(values) == 0 {
			return true
		}
		for _, v := range values {
			if refRule(r, v) {
				return true
			}
		}
	}
	return false
}

func refRule(r, v any) bool {
	m, ok := r.(map[string]any)
	if !ok {
		return same(r, v)
	}
	s, isString := v.(string)
	for op, arg := range m {
		switch op {
		case "prefix":
			return isString && strings.HasPrefix(s, arg.(string))
		case "suffix":
			return isString && strings.HasSuffix(s, arg.(string))
		case "equals-ignore-case":
			return isString && strings.EqualFold(s, arg.(string))
		case "exists":
			return arg == true
		case "anything-but":
			list, ok := arg.([]any)
			if !ok {
				list = []any{arg}
			}
			for _, x := range list {
				if same(x, v) {
					return false
				}
			}
			return true
		case "numeric":
			n, ok := v.(json.Number)
			if !ok {
				return false
			}
			x, err := strconv.ParseFloat(string(n), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return false
			}
			c := arg.([]any)
			for i := 0; i < len(c); i += 2 {
				y, _ := strconv.ParseFloat(string(c[i+1].(json.Number)), 64)
				var in bool
				switch c[i] {
				case "=":
					in = x == y
				case "<":
					in = x < y
				case "<=":
					in = x <= y
				case ">":
					in = x > y
				case ">=":
					in = x >= y
				}
				if !in || math.IsNaN(x) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// same reports whether a pattern value and a data value are the same JSON
// value as written.
func same(a, b any) bool {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return ok && a == b
	case json.Number:
		b, ok := b.(json.Number)
		return ok && a == b
	}
	return a == b
}
