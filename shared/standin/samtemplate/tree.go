package samtemplate

import (
	"fmt"
	"strconv"
	"strings"
)

// node is one line of a block mapping or sequence: "key: value", "key:"
// (its value is its children) or "- value" (key "-").
type node struct {
	key, value string
	line       int // 1-based
	indent     int
	children   []*node
}

// child is the first child with the key, or nil.
func (n *node) child(key string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// kids are n's children (none for a nil n).
func (n *node) kids() []*node {
	if n == nil {
		return nil
	}
	return n.children
}

// path follows keys down from n; nil when one is missing.
func (n *node) path(keys ...string) *node {
	for _, k := range keys {
		n = n.child(k)
	}
	return n
}

// parse builds the tree of a template's lines: a root whose children are
// the top-level keys.
func parse(text string) (*node, error) {
	root := &node{indent: -1}
	stack := []*node{root}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		raw := strings.TrimRight(lines[i], " \t\r")
		content := strings.TrimLeft(raw, " \t")
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		if strings.Contains(raw[:len(raw)-len(content)], "\t") {
			return nil, fmt.Errorf("line %d: indented with a tab (YAML allows spaces only)", i+1)
		}
		indent := len(raw) - len(content)
		n := &node{line: i + 1, indent: indent}
		if rest, ok := strings.CutPrefix(content, "- "); ok || content == "-" {
			n.key, n.value = "-", stripComment(strings.TrimSpace(rest))
		} else {
			k, v, err := splitKey(content)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			n.key, n.value = k, v
		}
		// A folded or literal scalar (after a tag, "!Sub >-"): the more
		// indented lines after it, kept as one quoted value.
		tag, indicator, tagged := strings.Cut(n.value, " ")
		if !tagged || !strings.HasPrefix(tag, "!") {
			tag, indicator = "", n.value
		}
		if isBlockScalar(indicator) {
			var text []string
			for i+1 < len(lines) {
				next := strings.TrimRight(lines[i+1], " \t\r")
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				text = append(text, strings.TrimSpace(next))
				i++
			}
			sep := " "
			if indicator[0] == '|' {
				sep = "\n"
			}
			n.value = strconv.Quote(strings.TrimSpace(strings.Join(text, sep)))
			if tag != "" {
				n.value = tag + " " + n.value
			}
		}
		for len(stack) > 1 {
			top := stack[len(stack)-1]
			// "key:" then "- item" at the key's own indentation: its item.
			sameIndentItem := n.key == "-" && top.key != "-" && top.indent == indent && top.value == ""
			if top.indent < indent || sameIndentItem {
				break
			}
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1]
		parent.children = append(parent.children, n)
		stack = append(stack, n)
	}
	return root, nil
}

func isBlockScalar(v string) bool {
	switch v {
	case ">", ">-", ">+", "|", "|-", "|+":
		return true
	}
	return false
}

// splitKey splits "key: value" (the first ": " outside quotes) or "key:".
// Keys may hold colons (AWS::CloudFormation::Interface, Fn::If).
func splitKey(s string) (key, value string, err error) {
	if s[0] == '"' || s[0] == '\'' {
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return "", "", fmt.Errorf("unterminated quoted key %s", s)
		}
		key, rest := s[1:end+1], s[end+2:]
		if !strings.HasPrefix(rest, ":") {
			return "", "", fmt.Errorf("quoted key %s without a colon", s)
		}
		return key, stripComment(strings.TrimSpace(rest[1:])), nil
	}
	if i := strings.Index(s, ": "); i >= 0 {
		return s[:i], stripComment(strings.TrimSpace(s[i+2:])), nil
	}
	if k, ok := strings.CutSuffix(s, ":"); ok {
		return k, "", nil
	}
	if i := strings.Index(s, ":\t"); i >= 0 {
		return s[:i], stripComment(strings.TrimSpace(s[i+2:])), nil
	}
	return "", "", fmt.Errorf("%q is not \"key: value\" or \"- item\"", s)
}

// stripComment drops a " #" comment outside quotes.
func stripComment(v string) string {
	var quote byte
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || v[i-1] == ' '):
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}
