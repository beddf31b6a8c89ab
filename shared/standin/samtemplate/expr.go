package samtemplate

import (
	"fmt"
	"regexp"
	"strings"
)

// expr is a parsed one-line value: a scalar, a flow list, or a short-form
// intrinsic (!Ref, !If, ...) applied to one of those.
type expr struct {
	tag    string  // "!Ref", "!If", ...; "" for a plain value
	scalar string  // a scalar's text, unquoted
	list   []*expr // a flow list's items
	isList bool
	opaque string // a flow mapping, kept as text: not evaluated
}

// parseExpr parses a whole one-line value.
func parseExpr(s string) (*expr, error) {
	p := &exprParser{s: s}
	e, err := p.value(true)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("%q: unexpected %q after the value", s, p.s[p.i:])
	}
	return e, nil
}

type exprParser struct {
	s string
	i int
}

func (p *exprParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// value parses one value; top is true outside any flow collection, where a
// plain scalar runs to the end of the line (commas included).
func (p *exprParser) value(top bool) (*expr, error) {
	p.space()
	if p.i >= len(p.s) {
		return &expr{}, nil
	}
	switch p.s[p.i] {
	case '!':
		j := p.i + 1
		for j < len(p.s) && p.s[j] != ' ' && p.s[j] != ',' && p.s[j] != ']' && p.s[j] != '[' {
			j++
		}
		e := &expr{tag: p.s[p.i:j]}
		p.i = j
		p.space()
		if p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != ']' {
			arg, err := p.value(top)
			if err != nil {
				return nil, err
			}
			e.scalar, e.list, e.isList, e.opaque = arg.scalar, arg.list, arg.isList, arg.opaque
			if arg.tag != "" { // !Not !Equals ...: keep the inner tag as the one item
				e.list, e.isList, e.scalar = []*expr{arg}, false, ""
			}
		}
		return e, nil
	case '[':
		p.i++
		e := &expr{isList: true}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return e, nil
			}
			item, err := p.value(false)
			if err != nil {
				return nil, err
			}
			e.list = append(e.list, item)
			p.space()
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("%q: a flow list without its ]", p.s)
			}
			switch p.s[p.i] {
			case ',':
				p.i++
			case ']':
			default:
				return nil, fmt.Errorf("%q: unexpected %q in a flow list", p.s, p.s[p.i:])
			}
		}
	case '{':
		depth, j := 0, p.i
		for ; j < len(p.s); j++ {
			if p.s[j] == '{' {
				depth++
			} else if p.s[j] == '}' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j == len(p.s) {
			return nil, fmt.Errorf("%q: a flow mapping without its }", p.s)
		}
		e := &expr{opaque: p.s[p.i : j+1]}
		p.i = j + 1
		return e, nil
	case '"', '\'':
		q := p.s[p.i]
		var b strings.Builder
		for j := p.i + 1; j < len(p.s); j++ {
			c := p.s[j]
			switch {
			case q == '"' && c == '\\' && j+1 < len(p.s):
				j++
				switch p.s[j] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(p.s[j])
				}
			case q == '\'' && c == '\'' && j+1 < len(p.s) && p.s[j+1] == '\'':
				b.WriteByte('\'')
				j++
			case c == q:
				p.i = j + 1
				return &expr{scalar: b.String()}, nil
			default:
				b.WriteByte(c)
			}
		}
		return nil, fmt.Errorf("%q: unterminated quoted string", p.s)
	}
	j := p.i
	if top {
		j = len(p.s)
	} else {
		for j < len(p.s) && p.s[j] != ',' && p.s[j] != ']' {
			j++
		}
	}
	e := &expr{scalar: strings.TrimSpace(p.s[p.i:j])}
	p.i = j
	return e, nil
}

// result is an evaluated value: a string, or AWS::NoValue (the property or
// variable is left out).
type result struct {
	s       string
	noValue bool
}

// env is what values are evaluated against.
type env struct {
	params     map[string]string // parameter values (defaults, then overrides)
	unset      map[string]bool   // parameters with no default and no override
	pseudo     map[string]string // AWS::Region ...
	conditions map[string]string // condition name → its one-line expression
	resources  map[string]bool   // logical ids (a !Ref to one is unresolved)
	depth      int
}

// UnresolvedError says why a value could not be resolved.
type UnresolvedError struct{ Reason string }

func (e *UnresolvedError) Error() string { return e.Reason }

func unresolved(format string, a ...any) error {
	return &UnresolvedError{Reason: fmt.Sprintf(format, a...)}
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// eval evaluates a value.
func (v *env) eval(e *expr) (result, error) {
	switch e.tag {
	case "":
		if e.isList || e.opaque != "" {
			return result{}, unresolved("a list or mapping is not a string value")
		}
		return result{s: e.scalar}, nil
	case "!Ref":
		return v.ref(e.scalar)
	case "!Sub":
		if e.isList || e.opaque != "" || e.list != nil {
			return result{}, unresolved("!Sub with a variable map is not read")
		}
		var err error
		out := subVar.ReplaceAllStringFunc(e.scalar, func(m string) string {
			name := m[2 : len(m)-1]
			if strings.HasPrefix(name, "!") { // ${!Literal}
				return "${" + name[1:] + "}"
			}
			r, e := v.ref(name)
			if e != nil && err == nil {
				err = e
			}
			return r.s
		})
		return result{s: out}, err
	case "!If":
		if len(e.list) != 3 || !e.isList {
			return result{}, unresolved("!If takes [condition, then, else]")
		}
		if e.list[0].tag != "" || e.list[0].isList {
			return result{}, unresolved("!If's condition must be a condition's name")
		}
		holds, err := v.condition(e.list[0].scalar)
		if err != nil {
			return result{}, err
		}
		if holds {
			return v.eval(e.list[1])
		}
		return v.eval(e.list[2])
	}
	return result{}, unresolved("%s is not read", e.tag)
}

// ref is a !Ref (or ${Name} of a !Sub).
func (v *env) ref(name string) (result, error) {
	if name == "AWS::NoValue" {
		return result{noValue: true}, nil
	}
	if p, ok := v.pseudo[name]; ok {
		return result{s: p}, nil
	}
	if p, ok := v.params[name]; ok {
		return result{s: p}, nil
	}
	if v.unset[name] {
		return result{}, unresolved("parameter %s has no default and no value was given", name)
	}
	if v.resources[name] || strings.Contains(name, ".") {
		return result{}, unresolved("%s is a resource (known once deployed)", name)
	}
	return result{}, unresolved("%s is neither a parameter nor a resource", name)
}

// condition evaluates a condition of the Conditions section.
func (v *env) condition(name string) (bool, error) {
	text, ok := v.conditions[name]
	if !ok {
		return false, unresolved("no condition %s", name)
	}
	if v.depth > 32 {
		return false, unresolved("condition %s refers to itself", name)
	}
	e, err := parseExpr(text)
	if err != nil {
		return false, unresolved("condition %s: %v", name, err)
	}
	v.depth++
	defer func() { v.depth-- }()
	return v.cond(e)
}

// cond evaluates a condition expression.
func (v *env) cond(e *expr) (bool, error) {
	args := e.list
	if !e.isList && len(args) == 1 && e.tag != "!Condition" {
		// "!Not !Condition X" is not CloudFormation's form; lists only.
		return false, unresolved("%s takes a list", e.tag)
	}
	switch e.tag {
	case "!Condition":
		return v.condition(e.scalar)
	case "!Equals":
		if len(args) != 2 {
			return false, unresolved("!Equals takes two values")
		}
		a, err := v.eval(args[0])
		if err != nil {
			return false, err
		}
		b, err := v.eval(args[1])
		if err != nil {
			return false, err
		}
		return a.s == b.s, nil
	case "!Not":
		if len(args) != 1 {
			return false, unresolved("!Not takes one condition")
		}
		c, err := v.cond(args[0])
		return !c, err
	case "!And", "!Or":
		all := e.tag == "!And"
		for _, a := range args {
			c, err := v.cond(a)
			if err != nil {
				return false, err
			}
			if e.tag == "!And" && !c {
				all = false
			}
			if e.tag == "!Or" && c {
				all = true
			}
		}
		return all, nil
	}
	return false, unresolved("%s is not a condition function", e.tag)
}
