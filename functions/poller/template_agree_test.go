package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/shardline"
	"github.com/shardline/shardline/shared/standin/samtemplate"
)

// The repository's root, where template.yaml, samconfig.toml, the
// Makefile and README.md are. These tests live here, in the generic
// poller's package, because every function of the template is a
// shardline.Start binary and this package has the template's neighbours at
// a fixed place; they read the functions from the template, not a list.
const repoRoot = "../.."

// The template read line by line for what samtemplate does not give (the
// sections as text, parameters' MinValue): CloudFormation's short tags
// (!Ref, !Sub) are not plain YAML, and template.yaml keeps one layout (two
// spaces per level), which these helpers rely on.

// section is the lines of a top-level section of template.yaml.
func section(t *testing.T, tpl, name string) []string {
	t.Helper()
	var out []string
	in := false
	for _, l := range strings.Split(tpl, "\n") {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			in = strings.HasPrefix(l, name+":")
			continue
		}
		if in {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("template.yaml has no %s section", name)
	}
	return out
}

// entries splits a section into its entries (two spaces in) and their lines.
func entries(lines []string) (names []string, body map[string][]string) {
	body = map[string][]string{}
	head := regexp.MustCompile(`^  ([A-Za-z0-9]+):\s*$`)
	cur := ""
	for _, l := range lines {
		if m := head.FindStringSubmatch(l); m != nil {
			cur = m[1]
			names = append(names, cur)
			continue
		}
		if cur != "" {
			body[cur] = append(body[cur], l)
		}
	}
	return names, body
}

// field is the value of "key: value" at the given indentation in lines.
func field(lines []string, indent int, key string) (string, bool) {
	p := strings.Repeat(" ", indent) + key + ":"
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return unquote(strings.TrimSpace(strings.TrimPrefix(l, p))), true
		}
	}
	return "", false
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// stub is the handler RequiredSettings gives the App: every function of
// the template is a shardline.Start binary with a handler of its own.
func stub(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return events.KinesisEventResponse{}, nil
}

// readTemplate reads a template with the parameter values a deployment
// must give (StreamName has no default) plus params.
func readTemplate(t *testing.T, path string, params map[string]string) *samtemplate.Template {
	t.Helper()
	p := map[string]string{"StreamName": "words"}
	for k, v := range params {
		p[k] = v
	}
	tpl, err := samtemplate.Read(path, samtemplate.Options{Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.Functions) == 0 {
		t.Fatalf("%s: no AWS::Serverless::Function", path)
	}
	return tpl
}

// checkSettings checks a function's variables as the function would: a
// function a schedule invokes must pass shardline's CheckLambda as they
// are; one that no schedule invokes (Lambda's native trigger's, or a
// poller's -target-function) needs no application or stream name, so
// those get placeholders, and the rest must still parse.
func checkSettings(t *testing.T, name string, fn *samtemplate.Function, env map[string]string) {
	t.Helper()
	for _, v := range fn.UnresolvedNames() {
		t.Errorf("%s: %s: %s=?: %s", name, fn.LogicalID, v, fn.Unresolved[v])
	}
	get := func(k string) string { return env[k] }
	input, scheduled := fn.Scheduled()
	if !scheduled {
		get = func(k string) string {
			if v := env[k]; v != "" || (k != "SHARDLINE_APP_NAME" && k != "SHARDLINE_STREAM_NAME") {
				return v
			}
			return "placeholder"
		}
	} else {
		// What the schedule sends is a poll to the function.
		var ev shardline.PollEvent
		dec := json.NewDecoder(strings.NewReader(input))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil || ev.Shardline != "poll" {
			t.Errorf("%s: %s: the schedule's Input %q is not {\"shardline\":\"poll\"} (%v)", name, fn.LogicalID, input, err)
		}
	}
	if err := shardline.New(shardline.Handle(stub)).CheckLambda(get); err != nil {
		t.Errorf("%s: %s refuses the template's settings: %v\n%v", name, fn.LogicalID, err, env)
	}
}

// checkTemplate is TestTemplateAgrees on the template at path; CodeUri and
// GoPackage resolve as they would beside the repository's template.
func checkTemplate(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	tpl := readTemplate(t, path, nil)

	t.Run("RequiredSettings", func(t *testing.T) {
		scheduled := 0
		for _, fn := range tpl.Functions {
			if _, ok := fn.Scheduled(); ok {
				scheduled++
			}
		}
		if scheduled == 0 {
			t.Error("no function is invoked by an enabled schedule by default: the scheduled poller is off")
		}
		// The parameters' defaults, and deployments that change what the
		// variables hold (each !If branch of the template's variables).
		// The scheduled poller's consumer ARN as CloudFormation gives it
		// once deployed (a !GetAtt, which samtemplate leaves unresolved).
		consumerARN, err := tpl.Resolve(`!Sub "arn:${AWS::Partition}:kinesis:${AWS::Region}:${AWS::AccountId}:stream/${StreamName}/consumer/${AppName}-poller:1700000000"`)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			params map[string]string
			check  func(fn *samtemplate.Function) error
			// deployed: variables of the scheduled function whose value is
			// a resource's attribute, known once deployed, with such a value.
			deployed map[string]string
		}{
			{"defaults", nil, func(fn *samtemplate.Function) error {
				if v, ok := fn.Env["SHARDLINE_CONSUMER_ARN"]; ok && v != "" {
					return errors.New("SHARDLINE_CONSUMER_ARN is set by default: enhanced fan-out is off by default")
				}
				return nil
			}, nil},
			{"TargetFunction", map[string]string{"TargetFunction": "another-function"}, func(fn *samtemplate.Function) error {
				if _, ok := fn.Scheduled(); ok && fn.Env["SHARDLINE_TARGET_FUNCTION"] != "another-function" {
					return errors.New("SHARDLINE_TARGET_FUNCTION is not TargetFunction")
				}
				return nil
			}, nil},
			{"UseNativeTrigger", map[string]string{"UseNativeTrigger": "true"}, nil, nil},
			{"UseScheduledPoller=false", map[string]string{"UseScheduledPoller": "false", "UseNativeTrigger": "true"}, func(fn *samtemplate.Function) error {
				if _, ok := fn.Scheduled(); ok {
					return errors.New("its schedule is still enabled")
				}
				return nil
			}, nil},
			{"PollerFanOut", map[string]string{"PollerFanOut": "true"}, nil, map[string]string{"SHARDLINE_CONSUMER_ARN": consumerARN}},
			{"NativeTriggerFanOut", map[string]string{"UseNativeTrigger": "true", "NativeTriggerFanOut": "true"}, func(fn *samtemplate.Function) error {
				if fn.Env["SHARDLINE_CONSUMER_ARN"] != "" {
					return errors.New("SHARDLINE_CONSUMER_ARN is set: the native trigger's consumer is not the poller's")
				}
				return nil
			}, nil},
			{"OnFailureQueueArn", map[string]string{"OnFailureQueueArn": "arn:aws:sqs:us-east-1:123456789012:given-up"}, nil, nil},
			{"OnFailureTopicArn", map[string]string{"OnFailureTopicArn": "arn:aws:sns:us-east-1:123456789012:given-up"}, nil, nil},
			{"OnFailureBucket", map[string]string{"OnFailureBucket": "given-up"}, func(fn *samtemplate.Function) error {
				if _, ok := fn.Scheduled(); ok && fn.Env["SHARDLINE_ON_FAILURE"] != "s3://given-up/shardline" {
					return errors.New("SHARDLINE_ON_FAILURE is not the bucket and prefix")
				}
				return nil
			}, nil},
		} {
			tpl := readTemplate(t, path, c.params)
			for _, fn := range tpl.Functions {
				if _, ok := fn.Scheduled(); ok {
					for k, v := range c.deployed {
						if _, ok := fn.Unresolved[k]; !ok {
							t.Errorf("%s: %s: %s=%q: want a resource's attribute (known once deployed)", c.name, fn.LogicalID, k, fn.Env[k])
							continue
						}
						delete(fn.Unresolved, k)
						fn.Env[k] = v
					}
				}
				checkSettings(t, c.name, fn, fn.Env)
				if c.check != nil {
					if err := c.check(fn); err != nil {
						t.Errorf("%s: %s: %v\n%v", c.name, fn.LogicalID, err, fn.Env)
					}
				}
			}
		}
	})

	t.Run("KnownVariables", func(t *testing.T) {
		vars := known()
		// Variables the template declares ahead of the code that reads
		// them, and why; an entry does nothing once the functions read it
		// (then delete it).
		ahead := map[string]string{
			"SHARDLINE_CONSUMER_ARN": "issue 18: -consumer-arn comes with the enhanced fan-out settings (branch consumer-2); PollerFanOut sets it",
		}
		for _, fn := range tpl.Functions {
			for _, k := range fn.Declared {
				if why, ok := ahead[k]; ok && !vars[k] {
					t.Logf("%s declares %s, which the functions do not read yet: %s", fn.LogicalID, k, why)
					continue
				}
				if strings.HasPrefix(k, "SHARDLINE_") && !vars[k] {
					t.Errorf("%s declares %s, which the functions do not read (%s)", fn.LogicalID, k, strings.Join(slices.Sorted(maps.Keys(vars)), ", "))
				}
			}
		}
	})

	t.Run("EveryParameterUsed", func(t *testing.T) {
		// Used where it acts: in the resources, the globals, the conditions
		// or the outputs (Metadata's parameter groups and Rules do not count).
		var used strings.Builder
		for _, s := range []string{"Globals", "Conditions", "Resources", "Outputs"} {
			used.WriteString(strings.Join(section(t, text, s), "\n"))
		}
		for _, p := range tpl.ParamNames() {
			q := regexp.QuoteMeta(p)
			if !regexp.MustCompile(`(!Ref\s+` + q + `\b|Ref:\s*` + q + `\b|\$\{` + q + `\})`).MatchString(used.String()) {
				t.Errorf("parameter %s is not used by any resource, condition or output", p)
			}
		}
	})

	t.Run("BuildTargets", func(t *testing.T) {
		checkBuilds(t, path, tpl)
	})

	t.Run("TimeoutScheduleMargin", func(t *testing.T) {
		// The defaults and what samconfig.toml deploys: the timeout fits the
		// schedule's period, and the deadline margin leaves at least half of
		// the run for reading (what CloudFormation's Rules cannot compare).
		params := tpl.Params
		sets := map[string]map[string]string{"defaults": params}
		sc, err := os.ReadFile(filepath.Join(repoRoot, "samconfig.toml"))
		if err != nil {
			t.Fatal(err)
		}
		over := regexp.MustCompile(`(?m)^parameter_overrides = "(.*)"$`)
		pair := regexp.MustCompile(`(\w+)=\\"([^\\]*)\\"`)
		for i, m := range over.FindAllStringSubmatch(string(sc), -1) {
			set := map[string]string{}
			for k, v := range params {
				set[k] = v
			}
			for _, p := range pair.FindAllStringSubmatch(m[1], -1) {
				if !slices.Contains(tpl.ParamNames(), p[1]) {
					t.Errorf("samconfig.toml sets parameter %s, which the template does not have", p[1])
				}
				set[p[1]] = p[2]
			}
			sets["samconfig.toml parameter_overrides #"+strconv.Itoa(i+1)] = set
		}
		for name, set := range sets {
			timeout, err := strconv.Atoi(set["FunctionTimeout"])
			if err != nil {
				t.Fatalf("%s: FunctionTimeout %q", name, set["FunctionTimeout"])
			}
			if period, ok := schedulePeriod(set["Schedule"]); !ok {
				t.Errorf("%s: Schedule %q: not a rate() this test reads", name, set["Schedule"])
			} else if time.Duration(timeout)*time.Second > period {
				t.Errorf("%s: FunctionTimeout %d s is longer than the schedule's period %s", name, timeout, period)
			}
			margin, err := time.ParseDuration(set["DeadlineMargin"])
			if err != nil || margin <= 0 || margin > time.Duration(timeout)*time.Second/2 {
				t.Errorf("%s: DeadlineMargin %q with FunctionTimeout %d s: want a positive duration of at most half the timeout", name, set["DeadlineMargin"], timeout)
			}
		}
	})

	t.Run("OneMinuteRule", func(t *testing.T) {
		// The Rule's list of timeouts is exactly MinValue..60.
		_, body := entries(section(t, text, "Parameters"))
		lo, _ := field(body["FunctionTimeout"], 4, "MinValue")
		min, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("FunctionTimeout MinValue %q", lo)
		}
		var want []string
		for i := min; i <= 60; i++ {
			want = append(want, strconv.Quote(strconv.Itoa(i)))
		}
		if !strings.Contains(strings.Join(section(t, text, "Rules"), "\n"), "- ["+strings.Join(want, ", ")+"]") {
			t.Errorf("Rules: no list of the timeouts %s to 60 for rate(1 minute)", lo)
		}
	})
}

// checkBuilds: every function builds as sam build would build it. A
// BuildMethod makefile function: with the Makefile in its CodeUri, a small
// folder (not the repository with .cache/ and bin/), whose
// build-<LogicalId> builds the function's Metadata GoPackage (a main
// package of the module) for the architecture ARCH names, and the root
// Makefile (awk) finds the same functions and packages as samtemplate; a
// BuildMethod go1.x one: a CodeUri with go.mod and Handler bootstrap.
func checkBuilds(t *testing.T, path string, tpl *samtemplate.Template) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	arch := tpl.Params["Architecture"]
	wantArch := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[arch]
	if wantArch == "" {
		t.Fatalf("Architecture default %q: want arm64 or x86_64", arch)
	}
	var want []string
	for _, fn := range tpl.Functions {
		id := fn.LogicalID
		if !strings.HasPrefix(fn.Runtime, "provided.al2") || fn.Handler != "bootstrap" {
			t.Errorf("%s: Runtime %q Handler %q: want provided.al2023 (or .al2) and bootstrap", id, fn.Runtime, fn.Handler)
		}
		if len(fn.Architectures) != 1 || fn.Architectures[0] != arch {
			t.Errorf("%s: Architectures %v, want [%s] (the Architecture parameter)", id, fn.Architectures, arch)
		}
		switch fn.BuildMethod {
		case "go1.x":
			if _, err := os.Stat(filepath.Join(repoRoot, fn.CodeURI, "go.mod")); err != nil {
				t.Errorf("%s: BuildMethod go1.x wants the module (go.mod) in CodeUri %q: %v", id, fn.CodeURI, err)
			}
			continue
		case "makefile":
		default:
			t.Errorf("%s: BuildMethod %q: allowed makefile (with a GoPackage) or go1.x", id, fn.BuildMethod)
			continue
		}
		if fn.GoPackage == "" {
			t.Errorf("%s: BuildMethod makefile without a Metadata GoPackage: the Makefiles do not know what to build", id)
			continue
		}
		want = append(want, id, fn.GoPackage)
		if _, err := os.Stat(filepath.Join(repoRoot, fn.GoPackage, "main.go")); err != nil {
			t.Errorf("%s: GoPackage %s: %v", id, fn.GoPackage, err)
		}
		// sam build copies CodeUri: not the module root.
		codeDir := filepath.Join(repoRoot, fn.CodeURI)
		for _, big := range []string{"go.mod", ".cache", "bin", ".git"} {
			if _, err := os.Stat(filepath.Join(codeDir, big)); err == nil {
				t.Errorf("%s: CodeUri %q holds %s: sam build would copy the repository", id, fn.CodeURI, big)
			}
		}
		// What sam build runs: make --makefile <CodeUri>/Makefile
		// build-<id> in a scratch directory, ARTIFACTS_DIR set.
		for arch, goarch := range map[string]string{"": wantArch, "x86_64": "amd64", "amd64": "amd64", "arm64": "arm64"} {
			out, artifacts, err := makeBuild(t, codeDir, path, id, arch, "-n")
			if err != nil {
				t.Errorf("%s ARCH=%q: make: %v\n%s", id, arch, err, out)
				continue
			}
			want := regexp.MustCompile(`(?m)GOARCH=` + goarch + ` .*go build .*-tags lambda\.norpc .*-o ` + regexp.QuoteMeta(filepath.Join(artifacts, "bootstrap")) + ` ` + regexp.QuoteMeta(fn.GoPackage) + `[ \t]*$`)
			if !want.Match(out) {
				t.Errorf("%s ARCH=%q: make would not build %s for GOARCH=%s into ARTIFACTS_DIR:\n%s", id, arch, fn.GoPackage, goarch, out)
			}
		}
	}
	// The root Makefile's awk finds the same functions.
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-s", "--no-print-directory", "template-functions", "TEMPLATE="+abs)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make template-functions: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("the root Makefile finds %q in %s, samtemplate %q", got, path, want)
	}
}

// makeBuild runs what sam build runs for a BuildMethod makefile function
// (extra "-n": only print it) with TEMPLATE=path, in a scratch directory.
func makeBuild(t *testing.T, codeDir, path, id, arch string, extra ...string) (out []byte, artifacts string, err error) {
	t.Helper()
	scratch, artifacts := t.TempDir(), t.TempDir()
	abs, err := filepath.Abs(filepath.Join(codeDir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	tplAbs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	args := append(extra, "--makefile", abs, "build-"+id, "TEMPLATE="+tplAbs)
	if arch != "" {
		args = append(args, "ARCH="+arch)
	}
	cmd := exec.Command("make", args...)
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts) // as sam build passes it
	out, err = cmd.CombinedOutput()
	return out, artifacts, err
}

// TestTemplateAgrees: template.yaml and the code agree, for every function
// the template has. Each function's variables, with the parameters'
// defaults and with each deployment choice that changes them, pass the
// function's own checks (every required setting set, every value one the
// function takes), and the schedule's Input is the poll event; every
// variable is one the functions read; every parameter is used; every
// function builds as sam build builds it (makefile: build-<LogicalId> of
// the Makefile in its small CodeUri, building its Metadata GoPackage for
// the architecture the template names); the timeout fits the schedule.
func TestTemplateAgrees(t *testing.T) {
	checkTemplate(t, filepath.Join(repoRoot, "template.yaml"))
}

// secondFunction is README.md's YAML block after the marker line
// "<!-- second-function -->": how to add a function to the template.
func secondFunction(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- second-function -->")
	if !ok {
		t.Fatal(`README.md has no "<!-- second-function -->" marker before the example of a second function`)
	}
	m := regexp.MustCompile("(?s)^\\s*```yaml\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatal("README.md: no ```yaml block right after the second-function marker")
	}
	return m[1]
}

// TestSecondFunction: a function added to template.yaml as README.md says
// (its YAML block, verbatim, at the end of Resources) passes every check
// of TestTemplateAgrees, and the Makefiles build it, as sam build runs
// them, into a bootstrap for the architecture asked; the scheduled poller
// invokes it when TargetFunction names it.
func TestSecondFunction(t *testing.T) {
	snippet := secondFunction(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\nOutputs:\n")
	if i < 0 {
		t.Fatal("template.yaml has no Outputs section")
	}
	text = text[:i] + "\n" + strings.TrimRight(snippet, "\n") + "\n" + text[i:]
	// A copy in a temporary directory: checkTemplate resolves CodeUri and
	// GoPackage against the repository, as beside its template.
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := readTemplate(t, path, nil)
	if len(tpl.Functions) < 2 {
		t.Fatalf("README's block added no function: %v", tpl.Names())
	}
	second := tpl.Functions[len(tpl.Functions)-1]
	t.Logf("README's second function: %s (GoPackage %s, FunctionName %q)", second.LogicalID, second.GoPackage, second.FunctionName)

	checkTemplate(t, path)

	t.Run("TargetFunction", func(t *testing.T) {
		if second.FunctionName == "" {
			t.Skip("the example gives no FunctionName")
		}
		tpl := readTemplate(t, path, map[string]string{"TargetFunction": second.FunctionName})
		for _, fn := range tpl.Functions {
			if _, ok := fn.Scheduled(); ok && fn.Env["SHARDLINE_TARGET_FUNCTION"] != second.FunctionName {
				t.Errorf("%s: SHARDLINE_TARGET_FUNCTION %q, want %q", fn.LogicalID, fn.Env["SHARDLINE_TARGET_FUNCTION"], second.FunctionName)
			}
		}
		if ok, err := tpl.Condition("InvokesTarget"); err != nil || !ok {
			t.Errorf("InvokesTarget (the lambda:InvokeFunction grant) = %v, %v with TargetFunction set", ok, err)
		}
	})

	t.Run("Builds", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the function")
		}
		goarch := runtime.GOARCH
		machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if machine == elf.EM_NONE {
			t.Skipf("no ELF machine for %s", goarch)
		}
		out, artifacts, err := makeBuild(t, filepath.Join(repoRoot, second.CodeURI), path, second.LogicalID, goarch)
		if err != nil {
			t.Fatalf("make build-%s: %v\n%s", second.LogicalID, err, out)
		}
		f, err := elf.Open(filepath.Join(artifacts, "bootstrap"))
		if err != nil {
			t.Fatalf("%v\nmake:\n%s", err, out)
		}
		defer f.Close()
		if f.Machine != machine {
			t.Errorf("bootstrap for %s, want %s", f.Machine, machine)
		}
		if !bytes.Contains(out, []byte(second.GoPackage)) {
			t.Errorf("make built something else than %s:\n%s", second.GoPackage, out)
		}
	})
}

// schedulePeriod is the period of a rate() expression.
func schedulePeriod(expr string) (time.Duration, bool) {
	m := regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`).FindStringSubmatch(expr)
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	return time.Duration(n) * unit, true
}
