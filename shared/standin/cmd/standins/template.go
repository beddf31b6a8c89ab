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
	refRE  = regexp.MustCompile(`^!Ref (\w+)$`)
	ifRE   = regexp.MustCompile(`^!If \[(\w+), *([^,]+), *([^,\]]+)\]$`)
	condRE = regexp.MustCompile(`^!Not \[!Equals \[!Ref (\w+), *""\]\]$`)
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
		c := condRE.FindStringSubmatch(conds[m[1]])
		if c == nil {
			return "", false
		}
		if params[c[1]] != "" {
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
