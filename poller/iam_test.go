package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sdkCalls are the IAM actions of the AWS SDK calls the code's interfaces
// list: every interface method whose second parameter is a *<svc>.<Op>Input
// of an aws-sdk-go-v2/service package, as <svc>:<Op> (Lambda's Invoke is
// lambda:InvokeFunction). Skipped: the word producer (shared/produce:
// `poller produce` writes to a stream, a producer's grant, not the
// consumer's), `poller redrive` (shared/redrive: an operator's command
// reading the on-failure destination back, with the grant the README's
// "Redrive what was given up" lists) and the test stand-ins
// (shared/standin, shared/lambdaemu).
func sdkCalls(t *testing.T) map[string][]string {
	t.Helper()
	skip := map[string]bool{"../shared/produce": true, "../shared/redrive": true, "../shared/standin": true, "../shared/lambdaemu": true}
	rename := map[string]string{"lambda:Invoke": "lambda:InvokeFunction"}
	calls := map[string][]string{}
	fset := token.NewFileSet()
	for _, root := range []string{"../shared", "../poller", "../functions"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if skip[path] || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			svc := map[string]string{} // import name -> IAM prefix
			for _, im := range f.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				const sdk = "github.com/aws/aws-sdk-go-v2/service/"
				if !strings.HasPrefix(p, sdk) || strings.Count(p[len(sdk):], "/") > 0 {
					continue
				}
				name := p[len(sdk):]
				if im.Name != nil {
					svc[im.Name.Name] = name
				} else {
					svc[name] = name
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				it, ok := ts.Type.(*ast.InterfaceType)
				if !ok {
					return true
				}
				for _, m := range it.Methods.List {
					ft, ok := m.Type.(*ast.FuncType)
					if !ok || len(m.Names) != 1 {
						continue
					}
					var params []ast.Expr
					for _, p := range ft.Params.List {
						for range max(1, len(p.Names)) {
							params = append(params, p.Type)
						}
					}
					if len(params) < 2 {
						continue
					}
					star, ok := params[1].(*ast.StarExpr)
					if !ok {
						continue
					}
					sel, ok := star.X.(*ast.SelectorExpr)
					if !ok {
						continue
					}
					pkg, ok := sel.X.(*ast.Ident)
					if !ok || svc[pkg.Name] == "" || sel.Sel.Name != m.Names[0].Name+"Input" {
						continue
					}
					action := svc[pkg.Name] + ":" + m.Names[0].Name
					if r, ok := rename[action]; ok {
						action = r
					}
					calls[action] = append(calls[action], fset.Position(m.Pos()).String()+" ("+ts.Name.Name+")")
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Calls made through an SDK helper rather than an interface of ours:
	// the per-service roles (-kinesis-role-arn, ...) are assumed with
	// stscreds.NewAssumeRoleProvider.
	if b, err := os.ReadFile("../shared/awsconf/awsconf.go"); err == nil && strings.Contains(string(b), "stscreds.NewAssumeRoleProvider") {
		calls["sts:AssumeRole"] = append(calls["sts:AssumeRole"], "shared/awsconf/awsconf.go (stscreds)")
	}
	return calls
}

// TestIAMPolicy: poller/iam-policy.json (what `poller` needs on a VM or in
// a container) grants every action the code's AWS interfaces call, and no
// other, save kms:Decrypt, which Kinesis uses on the caller's behalf to
// serve GetRecords from a stream encrypted with a customer managed key; the
// enhanced fan-out actions act on the stream's consumers only
// (RegisterStreamConsumer on the stream, as it registers one), and those
// of issue 18's consumer calls are listed ahead of the code.
func TestIAMPolicy(t *testing.T) {
	calls := sdkCalls(t)
	for _, want := range []string{"kinesis:GetRecords", "kinesis:SubscribeToShard", "dynamodb:UpdateItem", "lambda:InvokeFunction", "sqs:SendMessage", "sns:Publish", "s3:PutObject", "cloudwatch:PutMetricData"} {
		if calls[want] == nil {
			t.Fatalf("found no interface listing %s: the scan of the code is broken (found %v)", want, keys(calls))
		}
	}
	implied := map[string]string{"kms:Decrypt": "kinesis:GetRecords"}
	// Where the enhanced fan-out actions act: the stream's consumers
	// (their ARNs are the stream's, /consumer/NAME:EPOCH); registering one
	// acts on the stream.
	scope := map[string]*regexp.Regexp{
		"kinesis:SubscribeToShard":       regexp.MustCompile(`^arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/(\*|<[a-z-]+>:\*)$`),
		"kinesis:DescribeStreamConsumer": regexp.MustCompile(`^arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/(\*|<[a-z-]+>:\*)$`),
		"kinesis:RegisterStreamConsumer": regexp.MustCompile(`^arn:aws:kinesis:<region>:<account>:stream/<stream>$`),
	}

	b, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Sid      string
			Effect   string
			Action   json.RawMessage
			Resource json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2012-10-17" {
		t.Errorf("Version %q, want 2012-10-17", doc.Version)
	}
	placeholder := regexp.MustCompile(`^(\*|arn:aws:[a-z0-9-]+:(<region>)?:(<account>)?:.*<[a-z-]+>.*)$`)
	granted := map[string]string{}
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			t.Errorf("statement %s: Effect %q, want Allow", s.Sid, s.Effect)
		}
		resources := strings1(t, s.Sid, s.Resource)
		for _, a := range strings1(t, s.Sid, s.Action) {
			if _, dup := granted[a]; dup {
				t.Errorf("%s granted twice", a)
			}
			granted[a] = s.Sid
			if re := scope[a]; re != nil {
				for _, r := range resources {
					if !re.MatchString(r) {
						t.Errorf("statement %s: %s on %q: want %s", s.Sid, a, r, re)
					}
				}
			}
		}
		for _, r := range resources {
			if !placeholder.MatchString(r) {
				t.Errorf("statement %s: resource %q: want an ARN with <placeholders> (or * where the action takes no resource)", s.Sid, r)
			}
		}
	}
	for _, a := range keys(calls) {
		if _, ok := granted[a]; !ok {
			t.Errorf("the code calls %s (%s), which iam-policy.json does not grant", a, strings.Join(calls[a], "; "))
		}
	}
	for a, sid := range granted {
		if calls[a] != nil {
			continue
		}
		if by, ok := implied[a]; ok && calls[by] != nil {
			continue
		}
		t.Errorf("iam-policy.json grants %s (statement %s), which no interface of the code calls", a, sid)
	}
}

// strings1 reads an IAM string-or-list field.
func strings1(t *testing.T, sid string, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("statement %s: %s: want a string or a list of strings", sid, raw)
	}
	return many
}

func keys(m map[string][]string) []string {
	var k []string
	for a := range m {
		k = append(k, a)
	}
	sort.Strings(k)
	return k
}
