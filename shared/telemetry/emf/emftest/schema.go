package emftest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// annotations are the schema keywords that check nothing.
var annotations = []string{"$comment", "$id", "$schema", "title", "description", "examples"}

// check validates v (decoded with UseNumber) against schema s at path: the
// keywords type, required, properties, additionalProperties (false),
// items, minItems, maxItems, minLength, maxLength and pattern. Any other
// keyword fails, so that the schema cannot ask for what is not checked.
func check(s map[string]any, v any, path string) error {
	for k := range s {
		switch {
		case slices.Contains(annotations, k):
		case k == "type", k == "required", k == "properties", k == "additionalProperties", k == "items",
			k == "minItems", k == "maxItems", k == "minLength", k == "maxLength", k == "pattern":
		default:
			return fmt.Errorf("schema at %s: keyword %q is not supported by this checker", path, k)
		}
	}
	if t, ok := s["type"].(string); ok && !isType(v, t) {
		return fmt.Errorf("%s: %v is not of type %s", path, v, t)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, r := range list(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				return fmt.Errorf("%s: required member %q is missing", path, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, mv := range x {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: member %q is not allowed", path, k)
				}
				continue
			}
			if err := check(ps, mv, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if err := bounds(s, "Items", len(x), path); err != nil {
			return err
		}
		if is, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				if err := check(is, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case string:
		if err := bounds(s, "Length", utf8.RuneCountInString(x), path); err != nil {
			return err
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			return fmt.Errorf("%s: %q does not match %s", path, x, p)
		}
	}
	return nil
}

// bounds checks minItems/maxItems or minLength/maxLength.
func bounds(s map[string]any, what string, n int, path string) error {
	if m, ok := s["min"+what].(float64); ok && float64(n) < m {
		return fmt.Errorf("%s: %d %s, want at least %v", path, n, strings.ToLower(what), m)
	}
	if m, ok := s["max"+what].(float64); ok && float64(n) > m {
		return fmt.Errorf("%s: %d %s, want at most %v", path, n, strings.ToLower(what), m)
	}
	return nil
}

func isType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		_, err := n.Int64()
		return ok && err == nil
	}
	return false
}

func list(v any) []any { l, _ := v.([]any); return l }
