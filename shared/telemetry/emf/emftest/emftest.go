package emftest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

//go:embed testdata/emf-schema.json
var schemaJSON []byte

// maxLine is CloudWatch Logs' largest event, 256 KiB (the specification
// now allows 1 MB; Lambda's log events and older accounts keep 256 KiB).
const maxLine = 256 << 10

// Document is one EMF line, read.
type Document struct {
	Timestamp  int64
	Namespace  string
	Dimensions []string             // the dimension set's names
	DimValues  map[string]string    // the dimension values, by name
	Values     map[string][]float64 // each metric's values (a number is one value)
	Units      map[string]string    // each metric's unit
	Members    map[string]any       // the whole root object
}

// Validate checks line against the schema and the rules on target members
// and returns it read.
func Validate(line []byte) (Document, error) {
	if len(line) > maxLine {
		return Document{}, fmt.Errorf("line of %d bytes: allowed at most %d", len(line), maxLine)
	}
	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		return Document{}, fmt.Errorf("schema: %w", err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return Document{}, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return Document{}, errors.New("data after the JSON object")
	}
	if err := check(schema, doc, "$"); err != nil {
		return Document{}, err
	}
	return targets(doc.(map[string]any))
}

// targets applies the specification's rules on target members: every
// dimension name is a root member with a string value of at most 1024
// characters; every metric name is a root member with a number or an
// array of at most 100 numbers.
func targets(root map[string]any) (Document, error) {
	aws := root["_aws"].(map[string]any)
	ts, _ := aws["Timestamp"].(json.Number).Int64()
	dirs := aws["CloudWatchMetrics"].([]any)
	if len(dirs) != 1 {
		return Document{}, fmt.Errorf("%d metric directives: this writer uses one per line", len(dirs))
	}
	d := dirs[0].(map[string]any)
	doc := Document{Timestamp: ts, Namespace: d["Namespace"].(string), DimValues: map[string]string{},
		Values: map[string][]float64{}, Units: map[string]string{}, Members: root}
	for _, set := range d["Dimensions"].([]any) {
		for _, n := range set.([]any) {
			name := n.(string)
			v, ok := root[name].(string)
			if !ok || v == "" || len(v) > 1024 {
				return Document{}, fmt.Errorf("dimension %q: target %v: want a string of 1–1024 characters on the root", name, root[name])
			}
			doc.Dimensions = append(doc.Dimensions, name)
			doc.DimValues[name] = v
		}
	}
	for _, m := range d["Metrics"].([]any) {
		def := m.(map[string]any)
		name := def["Name"].(string)
		if _, dup := doc.Values[name]; dup {
			return Document{}, fmt.Errorf("metric %q defined twice", name)
		}
		doc.Units[name], _ = def["Unit"].(string)
		var vals []any
		switch v := root[name].(type) {
		case json.Number:
			vals = []any{v}
		case []any:
			vals = v
		}
		if len(vals) == 0 || len(vals) > 100 {
			return Document{}, fmt.Errorf("metric %q: target %v: want a number or an array of 1–100 numbers on the root", name, root[name])
		}
		for _, x := range vals {
			n, ok := x.(json.Number)
			f, err := n.Float64()
			if !ok || err != nil {
				return Document{}, fmt.Errorf("metric %q: value %v is not a number", name, x)
			}
			doc.Values[name] = append(doc.Values[name], f)
		}
	}
	return doc, nil
}

// Find returns the EMF lines of a process's output (the JSON objects with
// an "_aws" member; other lines are skipped), each validated.
func Find(output string) ([]Document, error) {
	var out []Document
	for i, line := range strings.Split(output, "\n") {
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &probe) != nil || probe["_aws"] == nil {
			continue
		}
		d, err := Validate([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("line %d %.200s: %w", i+1, line, err)
		}
		out = append(out, d)
	}
	return out, nil
}
