package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// function is what `invoke` and `start-lambda` take from template.yaml for
// one AWS::Serverless::Function.
type function struct {
	Name       string
	Timeout    int // seconds
	MemoryMB   int
	Env        map[string]string
	Unresolved []string // variables whose value is not a plain value, !Ref or a simple !If
}

// readTemplate reads the functions of a SAM template: Globals.Function's
// MemorySize and Timeout, each function's own, and its Environment
// Variables with !Ref resolved to the parameters' defaults. It reads the
// few shapes this project's template.yaml uses, line by line (no YAML
// library: CloudFormation's tags need one that keeps them, which go.mod
// does not have); a value it cannot resolve is left out and listed.
func readTemplate(path string) (map[string]*function, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	params := map[string]string{}
	conds := map[string]string{}
	var section, cur string
	globalMem, globalTimeout := 128, 3
	fns := map[string]*function{}
	var fn *function
	inVars, varIndent := false, 0
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \r")
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if indent == 0 {
			section = strings.TrimSuffix(trim, ":")
			fn, inVars = nil, false
			continue
		}
		key, val, _ := strings.Cut(trim, ":")
		val = strings.TrimSpace(val)
		switch section {
		case "Parameters":
			if indent == 2 {
				cur = key
				params[cur] = ""
			} else if key == "Default" {
				params[cur] = unquote(val)
			}
		case "Conditions":
			if indent == 2 {
				conds[key] = val
			}
		case "Globals":
			if n, err := strconv.Atoi(val); err == nil && indent == 4 {
				switch key {
				case "MemorySize":
					globalMem = n
				case "Timeout":
					globalTimeout = n
				}
			}
		case "Resources":
			if indent == 2 {
				fn, inVars = nil, false
				if i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "Type: AWS::Serverless::Function" {
					fn = &function{Name: key, Env: map[string]string{}}
					fns[key] = fn
				}
				continue
			}
			if fn == nil {
				continue
			}
			if inVars && indent <= varIndent {
				inVars = false
			}
			switch {
			case inVars && indent == varIndent+2:
				v, ok := resolve(val, params, conds)
				if ok {
					fn.Env[key] = v
				} else {
					fn.Unresolved = append(fn.Unresolved, key)
				}
			case key == "Variables" && val == "":
				inVars, varIndent = true, indent
			case indent == 6 && (key == "Timeout" || key == "MemorySize"): // under Properties
				v, _ := resolve(val, params, conds)
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %s.%s: %q is not a number", path, fn.Name, key, val)
				}
				if key == "Timeout" {
					fn.Timeout = n
				} else {
					fn.MemoryMB = n
				}
			}
		}
	}
	for _, f := range fns {
		if f.Timeout == 0 {
			f.Timeout = globalTimeout
		}
		if f.MemoryMB == 0 {
			f.MemoryMB = globalMem
		}
		sort.Strings(f.Unresolved)
	}
	return fns, nil
}

var (
	refRE = regexp.MustCompile(`^!Ref (\w+)$`)
	ifRE  = regexp.MustCompile(`^!If \[(\w+), *([^,]+), *([^,\]]+)\]$`)
)

// resolve gives the value of a template value on the parameters' defaults:
// a plain value, !Ref Param, or !If [Cond, a, b] where Cond is
// !Not [!Equals [!Ref Param, ""]].
func resolve(v string, params, conds map[string]string) (string, bool) {
	if m := refRE.FindStringSubmatch(v); m != nil {
		p, ok := params[m[1]]
		return p, ok
	}
	if m := ifRE.FindStringSubmatch(v); m != nil {
		holds, ok := evalCond(conds[m[1]], params, conds, 0)
		if !ok {
			return "", false
		}
		if holds {
			return resolve(strings.TrimSpace(m[2]), params, conds)
		}
		return resolve(strings.TrimSpace(m[3]), params, conds)
	}
	if strings.HasPrefix(v, "!") || v == "" || strings.HasPrefix(v, "[") {
		return "", false
	}
	return unquote(v), true
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

// evalCond evaluates a condition written in flow style with !Not, !And,
// !Or, !Equals, !Condition and !Ref on the parameters' defaults.
func evalCond(expr string, params, conds map[string]string, depth int) (bool, bool) {
	expr = strings.TrimSpace(expr)
	if depth > 20 {
		return false, false
	}
	fn, rest, _ := strings.Cut(expr, " ")
	rest = strings.TrimSpace(rest)
	switch fn {
	case "!Condition":
		return evalCond(conds[rest], params, conds, depth+1)
	case "!Not", "!And", "!Or", "!Equals":
		args, ok := flowList(rest)
		if !ok {
			return false, false
		}
		switch fn {
		case "!Not":
			if len(args) != 1 {
				return false, false
			}
			v, ok := evalCond(args[0], params, conds, depth+1)
			return !v, ok
		case "!Equals":
			if len(args) != 2 {
				return false, false
			}
			a, ok1 := value(args[0], params)
			b, ok2 := value(args[1], params)
			return a == b, ok1 && ok2
		}
		all := fn == "!And"
		for _, a := range args {
			v, ok := evalCond(a, params, conds, depth+1)
			if !ok {
				return false, false
			}
			if fn == "!And" && !v {
				all = false
			}
			if fn == "!Or" && v {
				all = true
			}
		}
		return all, true
	}
	return false, false
}

// value is a !Ref's default or a literal.
func value(v string, params map[string]string) (string, bool) {
	v = strings.TrimSpace(v)
	if m := refRE.FindStringSubmatch(v); m != nil {
		p, ok := params[m[1]]
		return p, ok
	}
	if strings.HasPrefix(v, "!") {
		return "", false
	}
	return unquote(v), true
}

// flowList splits "[a, [b, c], d]" into its top-level items.
func flowList(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, false
	}
	s = s[1 : len(s)-1]
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '[':
			depth++
		case r == ']':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if last := strings.TrimSpace(s[start:]); last != "" {
		out = append(out, last)
	}
	return out, true
}
