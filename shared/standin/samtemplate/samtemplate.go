package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Function types SAM builds.
const FunctionType = "AWS::Serverless::Function"

// Template is what Read found in a template.
type Template struct {
	// Path is the template's file; Dir its directory, against which
	// CodeUri resolves (as for sam build).
	Path, Dir string
	// Params are the parameters' values: the defaults, then Options.Params.
	Params map[string]string
	// Functions are the AWS::Serverless::Function resources, in the order
	// of the template.
	Functions []*Function

	env *env
	doc *node
}

// Function is one AWS::Serverless::Function with Globals.Function applied.
type Function struct {
	LogicalID string
	Line      int // of its logical id in the template
	// FunctionName is Properties.FunctionName resolved ("" when the
	// template gives none and CloudFormation names the function).
	FunctionName string

	// CodeURI is Properties.CodeUri as written ("" when it is not a plain
	// path, such as an S3 location); CodeDir is it resolved against the
	// template's directory.
	CodeURI, CodeDir string
	Handler          string // Handler (bootstrap for provided.al2023)
	Runtime          string // Runtime (provided.al2023)
	Architectures    []string
	// BuildMethod is Metadata.BuildMethod: "makefile", "go1.x", or "".
	BuildMethod string
	// GoPackage is Metadata.GoPackage: the main package Shardline's
	// Makefiles build for a BuildMethod makefile function (relative to the
	// module root, ./functions/wordcount). sam build ignores the key.
	GoPackage string

	Timeout  int // seconds; 3 when neither the function nor Globals sets it
	MemoryMB int // 128 when neither sets it

	// Env is Environment.Variables (Globals' and the function's), each
	// resolved; Declared lists every variable the template declares (sam
	// local sets only those); Unresolved those whose value Read could not
	// resolve, with the reason.
	Env        map[string]string
	Declared   []string
	Unresolved map[string]string

	// Events are Properties.Events.
	Events []Event
}

// Event is one entry of a function's Events.
type Event struct {
	Name, Type string
	// Properties are its one-line properties, resolved where they could be
	// (Input, State, ScheduleExpression, ...).
	Properties map[string]string
}

// Options change what Read resolves values with.
type Options struct {
	// Params give parameters values, as sam's --parameter-overrides: they
	// win over the defaults.
	Params map[string]string
	// Pseudo gives pseudo parameters values; the defaults are
	// AWS::StackName "shardline", AWS::Region "us-east-1", AWS::AccountId
	// "123456789012", AWS::Partition "aws", AWS::URLSuffix
	// "amazonaws.com".
	Pseudo map[string]string
}

// Read reads the template at path.
func Read(path string, o Options) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	doc, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &Template{Path: abs, Dir: filepath.Dir(abs), Params: map[string]string{}, doc: doc}
	v := &env{params: t.Params, unset: map[string]bool{}, conditions: map[string]string{}, resources: map[string]bool{},
		pseudo: map[string]string{"AWS::StackName": "shardline", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
			"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/shardline/local"}}
	for k, val := range o.Pseudo {
		v.pseudo[k] = val
	}
	t.env = v
	for _, p := range doc.child("Parameters").kids() {
		if d := p.child("Default"); d != nil {
			e, err := parseExpr(d.value)
			if err != nil || e.tag != "" || e.isList {
				return nil, fmt.Errorf("%s:%d: parameter %s: Default %q is not a plain value", path, d.line, p.key, d.value)
			}
			t.Params[p.key] = e.scalar
		} else {
			v.unset[p.key] = true
		}
	}
	for k, val := range o.Params {
		if _, ok := t.Params[k]; !ok && !v.unset[k] {
			return nil, fmt.Errorf("%s: no parameter %s to give the value %q (the template has %s)", path, k, val, strings.Join(t.ParamNames(), ", "))
		}
		t.Params[k] = val
		delete(v.unset, k)
	}
	for _, c := range doc.child("Conditions").kids() {
		v.conditions[c.key] = c.value
	}
	for _, r := range doc.child("Resources").kids() {
		v.resources[r.key] = true
	}
	globals := doc.path("Globals", "Function")
	for _, r := range doc.child("Resources").kids() {
		if r.child("Type") == nil || r.child("Type").value != FunctionType {
			continue
		}
		fn, err := t.function(r, globals)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, r.line, r.key, err)
		}
		t.Functions = append(t.Functions, fn)
	}
	return t, nil
}

// ParamNames are the template's parameters, sorted.
func (t *Template) ParamNames() []string {
	var n []string
	for k := range t.Params {
		n = append(n, k)
	}
	for k := range t.env.unset {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Function is the function with the logical id, or nil.
func (t *Template) Function(id string) *Function {
	for _, f := range t.Functions {
		if f.LogicalID == id {
			return f
		}
	}
	return nil
}

// Names are the functions' logical ids, in template order.
func (t *Template) Names() []string {
	var n []string
	for _, f := range t.Functions {
		n = append(n, f.LogicalID)
	}
	return n
}

// Condition evaluates a condition of the template with its parameters.
func (t *Template) Condition(name string) (bool, error) { return t.env.condition(name) }

// Resolve evaluates a one-line value as Read does for variables.
func (t *Template) Resolve(value string) (string, error) {
	e, err := parseExpr(value)
	if err != nil {
		return "", err
	}
	r, err := t.env.eval(e)
	return r.s, err
}

// scalar resolves a property that must be a plain value or a !Ref/!Sub of
// parameters.
func (t *Template) scalar(n *node) (string, error) {
	if n == nil {
		return "", nil
	}
	if n.value == "" && len(n.children) > 0 {
		return "", fmt.Errorf("line %d: %s: a block value here is not read", n.line, n.key)
	}
	e, err := parseExpr(n.value)
	if err != nil {
		return "", fmt.Errorf("line %d: %s: %w", n.line, n.key, err)
	}
	r, err := t.env.eval(e)
	if err != nil {
		return "", fmt.Errorf("line %d: %s %s: %w", n.line, n.key, n.value, err)
	}
	return r.s, nil
}

func (t *Template) function(r, globals *node) (*Function, error) {
	props := r.child("Properties")
	fn := &Function{LogicalID: r.key, Line: r.line, Env: map[string]string{}, Unresolved: map[string]string{}, Timeout: 3, MemoryMB: 128}
	// A property of the function, else of Globals.
	prop := func(key string) *node {
		if n := props.child(key); n != nil {
			return n
		}
		return globals.child(key)
	}
	var err error
	if fn.FunctionName, err = t.scalar(props.child("FunctionName")); err != nil {
		return nil, err
	}
	if fn.Handler, err = t.scalar(prop("Handler")); err != nil {
		return nil, err
	}
	if fn.Runtime, err = t.scalar(prop("Runtime")); err != nil {
		return nil, err
	}
	if n := prop("CodeUri"); n != nil && n.value != "" {
		if fn.CodeURI, err = t.scalar(n); err != nil {
			return nil, err
		}
		if !strings.Contains(fn.CodeURI, "://") {
			fn.CodeDir = filepath.Join(t.Dir, filepath.FromSlash(fn.CodeURI))
		}
	}
	for key, dst := range map[string]*int{"Timeout": &fn.Timeout, "MemorySize": &fn.MemoryMB} {
		n := prop(key)
		if n == nil {
			continue
		}
		s, err := t.scalar(n)
		if err != nil {
			return nil, err
		}
		if *dst, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("line %d: %s %q is not a whole number", n.line, key, s)
		}
	}
	if n := prop("Architectures"); n != nil {
		items := n.kids()
		if n.value != "" {
			e, err := parseExpr(n.value)
			if err != nil || !e.isList {
				return nil, fmt.Errorf("line %d: Architectures %q: want a list", n.line, n.value)
			}
			for _, it := range e.list {
				r, err := t.env.eval(it)
				if err != nil {
					return nil, fmt.Errorf("line %d: Architectures: %w", n.line, err)
				}
				fn.Architectures = append(fn.Architectures, r.s)
			}
		}
		for _, it := range items {
			s, err := t.scalar(it)
			if err != nil {
				return nil, err
			}
			fn.Architectures = append(fn.Architectures, s)
		}
	}
	meta := r.child("Metadata")
	if fn.BuildMethod, err = t.scalar(meta.child("BuildMethod")); err != nil {
		return nil, err
	}
	if fn.GoPackage, err = t.scalar(meta.child("GoPackage")); err != nil {
		return nil, err
	}
	for _, vars := range []*node{globals.path("Environment", "Variables"), props.path("Environment", "Variables")} {
		for _, kv := range vars.kids() {
			if !slices.Contains(fn.Declared, kv.key) {
				fn.Declared = append(fn.Declared, kv.key)
			}
			delete(fn.Unresolved, kv.key)
			delete(fn.Env, kv.key)
			if len(kv.children) > 0 {
				fn.Unresolved[kv.key] = fmt.Sprintf("line %d: a value written over several lines is not read", kv.line)
				continue
			}
			e, err := parseExpr(kv.value)
			if err != nil {
				fn.Unresolved[kv.key] = fmt.Sprintf("line %d: %v", kv.line, err)
				continue
			}
			res, err := t.env.eval(e)
			switch {
			case err != nil:
				fn.Unresolved[kv.key] = fmt.Sprintf("line %d: %v", kv.line, err)
			case !res.noValue:
				fn.Env[kv.key] = res.s
			}
		}
	}
	sort.Strings(fn.Declared)
	for _, ev := range props.child("Events").kids() {
		e := Event{Name: ev.key, Properties: map[string]string{}}
		if typ := ev.child("Type"); typ != nil {
			e.Type = typ.value
		}
		for _, p := range ev.child("Properties").kids() {
			if p.value == "" {
				continue
			}
			if s, err := t.scalar(p); err == nil {
				e.Properties[p.key] = s
			}
		}
		fn.Events = append(fn.Events, e)
	}
	return fn, nil
}

// Scheduled reports whether one of the function's events is an enabled
// schedule (Schedule or ScheduleV2 whose State, if given, is not
// DISABLED), and returns its Input.
func (f *Function) Scheduled() (input string, ok bool) {
	for _, e := range f.Events {
		if e.Type != "Schedule" && e.Type != "ScheduleV2" {
			continue
		}
		if strings.EqualFold(e.Properties["State"], "DISABLED") || strings.EqualFold(e.Properties["Enabled"], "false") {
			continue
		}
		return e.Properties["Input"], true
	}
	return "", false
}

// UnresolvedNames are the variables in Unresolved, sorted.
func (f *Function) UnresolvedNames() []string {
	var n []string
	for k := range f.Unresolved {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Environ is Env as sorted KEY=VALUE pairs.
func (f *Function) Environ() []string {
	var out []string
	for k, v := range f.Env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
