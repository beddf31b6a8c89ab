package samtemplate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sample = `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: >-
  A template: with a colon
  over two lines.

Parameters:
  Stream:
    Type: String
  App:
    Type: String
    Default: my-app   # a comment
  Queue:
    Type: String
    Default: ""
  Topic:
    Type: String
    Default: ''
  Seconds:
    Type: Number
    Default: 30
  Flag:
    Type: String
    AllowedValues: ["true", "false"]
    Default: "false"

Conditions:
  HasQueue: !Not [!Equals [!Ref Queue, ""]]
  HasTopic: !And [!Not [!Condition HasQueue], !Not [!Equals [!Ref Topic, ""]]]
  FlagOn: !Equals [!Ref Flag, "true"]
  Either: !Or [!Condition HasQueue, !Condition FlagOn]

Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 10
    Architectures: [arm64]
    Environment:
      Variables:
        FROM_GLOBALS: g
        OVERRIDDEN: g

Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Ref App

  # A comment between resources.
  OneFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
      GoPackage: "./functions/one"
    Properties:
      CodeUri: functions
      FunctionName: !Sub ${AWS::StackName}-one
      MemorySize: 512
      Description: !Sub >-
        The ${App} function
        of ${AWS::StackName}.
      Environment:
        Variables:
          PLAIN: value with spaces, and commas
          QUOTED: "a # not a comment"
          REF: !Ref App
          STREAM: !Ref Stream
          SUB: !Sub ${Seconds}s
          SUB_PSEUDO: !Sub "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${App}"
          SUB_LITERAL: !Sub "${!Literal}-${App}"
          NESTED: !If [HasQueue, !Ref Queue, !If [HasTopic, !Ref Topic, !Sub "s3://${App}/p"]]
          EITHER: !If [Either, "yes", "no"]
          GONE: !If [FlagOn, x, !Ref AWS::NoValue]
          EMPTY: ""
          RESOURCE: !Ref Table
          ATTR: !GetAtt Table.Arn
          BLOCK: !If
            - HasQueue
            - a
            - b
          OVERRIDDEN: f
      Events:
        Tick:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 minute)
            Input: '{"shardline":"poll"}'
            State: !If [FlagOn, ENABLED, DISABLED]
            FlexibleTimeWindow:
              Mode: "OFF"

  TwoFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: ./two
      Timeout: !Ref Seconds
      Architectures:
      - x86_64
      Events:
        Old:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
`

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	path := write(t, sample)
	tpl, err := Read(path, Options{Params: map[string]string{"Stream": "words"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tpl.Names(); !reflect.DeepEqual(got, []string{"OneFunction", "TwoFunction"}) {
		t.Fatalf("functions %v", got)
	}
	one, two := tpl.Function("OneFunction"), tpl.Function("TwoFunction")
	if one.CodeURI != "functions" || one.FunctionName != "shardline-one" || two.FunctionName != "" || one.CodeDir != filepath.Join(filepath.Dir(path), "functions") || one.BuildMethod != "makefile" ||
		one.GoPackage != "./functions/one" || one.Handler != "bootstrap" || one.Runtime != "provided.al2023" ||
		one.Timeout != 10 || one.MemoryMB != 512 || !reflect.DeepEqual(one.Architectures, []string{"arm64"}) {
		t.Errorf("OneFunction %+v", one)
	}
	if two.CodeDir != filepath.Join(filepath.Dir(path), "two") || two.BuildMethod != "go1.x" || two.GoPackage != "" ||
		two.Timeout != 30 || two.MemoryMB != 128 || !reflect.DeepEqual(two.Architectures, []string{"x86_64"}) {
		t.Errorf("TwoFunction %+v", two)
	}
	want := map[string]string{
		"FROM_GLOBALS": "g",
		"OVERRIDDEN":   "f",
		"PLAIN":        "value with spaces, and commas",
		"QUOTED":       "a # not a comment",
		"REF":          "my-app",
		"STREAM":       "words",
		"SUB":          "30s",
		"SUB_PSEUDO":   "arn:aws:x:us-east-1:123456789012:my-app",
		"SUB_LITERAL":  "${Literal}-my-app",
		"NESTED":       "s3://my-app/p",
		"EITHER":       "no",
		"EMPTY":        "",
	}
	if !reflect.DeepEqual(one.Env, want) {
		t.Errorf("env\n got %v\nwant %v", one.Env, want)
	}
	if got := one.UnresolvedNames(); !reflect.DeepEqual(got, []string{"ATTR", "BLOCK", "RESOURCE"}) {
		t.Errorf("unresolved %v (%v)", got, one.Unresolved)
	}
	for _, k := range []string{"GONE", "BLOCK", "FROM_GLOBALS", "EMPTY"} {
		if !strings.Contains(strings.Join(one.Declared, " "), k) {
			t.Errorf("%s not declared: %v", k, one.Declared)
		}
	}
	if _, ok := one.Scheduled(); ok {
		t.Error("OneFunction's schedule is DISABLED with Flag=false, but Scheduled says it is on")
	}
	if _, ok := two.Scheduled(); !ok {
		t.Error("TwoFunction's Schedule event is not seen")
	}
	if d, err := tpl.Resolve(`!Sub "${App}"`); err != nil || d != "my-app" {
		t.Errorf("Resolve: %q, %v", d, err)
	}

	// Parameter values, as --parameter-overrides gives them.
	tpl, err = Read(path, Options{Params: map[string]string{"Queue": "arn:q", "Flag": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	one = tpl.Function("OneFunction")
	if one.Env["NESTED"] != "arn:q" || one.Env["EITHER"] != "yes" || one.Env["GONE"] != "x" {
		t.Errorf("with Queue and Flag: %v", one.Env)
	}
	if in, ok := one.Scheduled(); !ok || in != `{"shardline":"poll"}` {
		t.Errorf("Scheduled = %q, %v with Flag=true", in, ok)
	}
	if !strings.Contains(one.Unresolved["STREAM"], "Stream has no default") {
		t.Errorf("STREAM without a value: %q", one.Unresolved["STREAM"])
	}
	if ok, err := tpl.Condition("HasTopic"); err != nil || ok {
		t.Errorf("HasTopic = %v, %v", ok, err)
	}
}

func TestReadErrors(t *testing.T) {
	path := write(t, sample)
	if _, err := Read(path, Options{Params: map[string]string{"Nope": "x"}}); err == nil || !strings.Contains(err.Error(), "no parameter Nope") || !strings.Contains(err.Error(), "App, Flag") {
		t.Errorf("unknown parameter: %v", err)
	}
	for name, text := range map[string]string{
		"tab":         "Resources:\n\tX:\n",
		"not a key":   "Resources:\n  just words\n",
		"bad timeout": "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: soon\n",
	} {
		if _, err := Read(write(t, text), Options{}); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none.yaml"), Options{}); err == nil {
		t.Error("a missing file: no error")
	}
}

// TestRepositoryTemplate reads the repository's template.yaml.
func TestRepositoryTemplate(t *testing.T) {
	tpl, err := Read("../../../template.yaml", Options{Params: map[string]string{"StreamName": "words"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.Functions) == 0 {
		t.Fatal("no functions")
	}
	for _, f := range tpl.Functions {
		if len(f.Unresolved) > 0 {
			t.Errorf("%s: unresolved variables %v", f.LogicalID, f.Unresolved)
		}
		if f.CodeDir == "" || f.Handler == "" || f.Runtime == "" {
			t.Errorf("%s: %+v", f.LogicalID, f)
		}
	}
}

func TestExprErrors(t *testing.T) {
	for _, s := range []string{`[a, b`, `"open`, `{a: b`, `[a] b`} {
		if _, err := parseExpr(s); err == nil {
			t.Errorf("parseExpr(%q): no error", s)
		}
	}
	v := &env{params: map[string]string{"P": "x"}, conditions: map[string]string{"Loop": "!Condition Loop", "Odd": "!Not !Condition Loop"}}
	for _, s := range []string{`!If [Loop, a, b]`, `!If [Odd, a, b]`, `!If [Nope, a, b]`, `!If [P, a]`, `!Join [",", [a]]`, `!Sub ["${x}", {x: 1}]`, `!Ref Nope`} {
		e, err := parseExpr(s)
		if err != nil {
			t.Errorf("parseExpr(%q): %v", s, err)
			continue
		}
		if r, err := v.eval(e); err == nil {
			t.Errorf("eval(%q) = %q, want an error", s, r.s)
		}
	}
}
