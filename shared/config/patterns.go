package config

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Patterns is a repeatable setting of JSON patterns (-filter): each flag
// adds one; a value that starts with '[' (the variable's form) is a JSON
// array of patterns and replaces the list.
type Patterns []string

func (p *Patterns) String() string {
	if p == nil || len(*p) == 0 {
		return ""
	}
	b, _ := json.Marshal([]string(*p))
	return string(b)
}

// Set adds a pattern, or sets the list from a JSON array.
func (p *Patterns) Set(v string) error {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") {
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(v), &list); err != nil {
			return fmt.Errorf("allowed a JSON object, or a JSON array of objects: %v", err)
		}
		out := make(Patterns, 0, len(list))
		for _, r := range list {
			out = append(out, string(r))
		}
		*p = out
		return nil
	}
	if !json.Valid([]byte(v)) || !strings.HasPrefix(v, "{") {
		return fmt.Errorf("allowed a JSON object such as {\"data\":{\"type\":[\"order\"]}}")
	}
	*p = append(*p, v)
	return nil
}

// Get returns the patterns.
func (p *Patterns) Get() any { return []string(*p) }
