package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/shardline"
)

// The template read line by line: CloudFormation's short tags (!Ref, !Sub)
// are not plain YAML, and template.yaml keeps one layout (two spaces per
// level), which these helpers rely on.

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

// templateParams are template.yaml's parameters and their defaults ("" when
// none: the stream's name, which a deployment must give, is "words" here).
func templateParams(t *testing.T, tpl string) map[string]string {
	names, body := entries(section(t, tpl, "Parameters"))
	p := map[string]string{}
	for _, n := range names {
		d, _ := field(body[n], 4, "Default")
		p[n] = d
	}
	p["StreamName"] = "words"
	return p
}

// resolve evaluates a variable's value in template.yaml with the
// parameters' values: !Ref, !Sub, and a one-line !If [cond, then, else]
// (then when cond is in trueConds). A multi-line !If is the empty string
// (the on-failure destination: none by default).
func resolve(v string, params map[string]string, resources map[string]string, trueConds map[string]bool) string {
	v = strings.TrimSpace(v)
	if m := regexp.MustCompile(`^!If \[(\w+), (.*), (.*)\]$`).FindStringSubmatch(v); m != nil {
		if trueConds[m[1]] {
			return resolve(m[2], params, resources, trueConds)
		}
		return resolve(m[3], params, resources, trueConds)
	}
	switch {
	case v == "!If":
		return ""
	case strings.HasPrefix(v, "!Ref "):
		n := strings.TrimPrefix(v, "!Ref ")
		if r, ok := resources[n]; ok {
			return r
		}
		return params[n]
	case strings.HasPrefix(v, "!Sub "):
		return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(unquote(strings.TrimPrefix(v, "!Sub ")), func(s string) string {
			return params[s[2:len(s)-1]]
		})
	}
	return unquote(v)
}

// functionEnv is a function's Environment Variables in template.yaml, resolved.
func functionEnv(lines []string, params map[string]string, trueConds map[string]bool) map[string]string {
	env := map[string]string{}
	key := regexp.MustCompile(`^          ([A-Z][A-Z0-9_]*): ?(.*)$`)
	in := false
	for _, l := range lines {
		switch {
		case l == "        Variables:":
			in = true
		case in && !strings.HasPrefix(l, "          "):
			in = false
		case in:
			if m := key.FindStringSubmatch(l); m != nil {
				env[m[1]] = resolve(m[2], params, map[string]string{"WordCountFunction": "shardline-wordcount"}, trueConds)
			}
		}
	}
	return env
}

// TestTemplateAgrees: template.yaml and the code agree. The poller
// function's variables, with the parameters' defaults, pass the function's
// own checks (every required setting is set, every default is a value the
// function takes), with the in-process handler and with
// TargetOwnWordCount; every parameter is used; every
// AWS::Serverless::Function builds with a build-<LogicalId> target of the
// Makefile in its CodeUri, a small folder (not the repository with .cache/
// and bin/), for the architecture the template's Architecture names.
func TestTemplateAgrees(t *testing.T) {
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tpl := string(b)
	params := templateParams(t, tpl)
	names, res := entries(section(t, tpl, "Resources"))

	t.Run("RequiredSettings", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			conds map[string]bool
		}{
			{"defaults", nil},
			{"TargetOwnWordCount", map[string]bool{"TargetsOwnWordCount": true, "HasTarget": true}},
		} {
			env := functionEnv(res["PollerFunction"], params, c.conds)
			if len(env) < 10 {
				t.Fatalf("%s: only %d variables found for PollerFunction", c.name, len(env))
			}
			check := func() error { return shardline.New().CheckLambda(func(k string) string { return env[k] }) }
			if err := check(); err != nil {
				t.Errorf("%s: the poller function refuses the template's settings: %v\n%v", c.name, err, env)
			}
			if c.conds["TargetsOwnWordCount"] && (env["SHARDLINE_TARGET_FUNCTION"] == "" || env["SHARDLINE_HANDLER"] != "") {
				t.Errorf("TargetOwnWordCount: target %q, handler %q: want the word count function and no handler", env["SHARDLINE_TARGET_FUNCTION"], env["SHARDLINE_HANDLER"])
			}
		}
	})

	t.Run("EveryParameterUsed", func(t *testing.T) {
		// Used where it acts: in the resources, the globals, the conditions
		// or the outputs (Metadata's parameter groups and Rules do not count).
		var used strings.Builder
		for _, s := range []string{"Globals", "Conditions", "Resources", "Outputs"} {
			used.WriteString(strings.Join(section(t, tpl, s), "\n"))
		}
		for p := range params {
			q := regexp.QuoteMeta(p)
			if !regexp.MustCompile(`(!Ref\s+` + q + `\b|Ref:\s*` + q + `\b|\$\{` + q + `\})`).MatchString(used.String()) {
				t.Errorf("parameter %s is not used by any resource, condition or output", p)
			}
		}
	})

	t.Run("BuildTargets", func(t *testing.T) {
		if _, err := exec.LookPath("make"); err != nil {
			t.Skip("no make")
		}
		dirs := map[string]string{"PollerFunction": "poller", "WordCountFunction": "wordcount"}
		rootMk, err := os.ReadFile("../../Makefile")
		if err != nil {
			t.Fatal(err)
		}
		wantArch := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[params["Architecture"]]
		if wantArch == "" {
			t.Fatalf("Architecture default %q: want arm64 or x86_64", params["Architecture"])
		}
		n := 0
		for _, id := range names {
			if typ, _ := field(res[id], 4, "Type"); typ != "AWS::Serverless::Function" {
				continue
			}
			n++
			dir, ok := dirs[id]
			if !ok {
				t.Errorf("%s: a function this test does not know: add it to dirs", id)
				continue
			}
			if m, _ := field(res[id], 6, "BuildMethod"); m != "makefile" {
				t.Errorf("%s: BuildMethod %q, want makefile", id, m)
			}
			uri, _ := field(res[id], 6, "CodeUri")
			codeDir, err := filepath.Abs(filepath.Join("../..", uri))
			if err != nil {
				t.Fatal(err)
			}
			// sam build copies CodeUri: not the module root.
			for _, big := range []string{"go.mod", ".cache", "bin", ".git"} {
				if _, err := os.Stat(filepath.Join(codeDir, big)); err == nil {
					t.Errorf("%s: CodeUri %q holds %s: sam build would copy the repository", id, uri, big)
				}
			}
			mk, err := os.ReadFile(filepath.Join(codeDir, "Makefile"))
			if err != nil {
				t.Errorf("%s: %v", id, err)
				continue
			}
			target := regexp.MustCompile(`(?m)^(?:\S+ )*build-` + id + `(?: \S+)*:`)
			if !target.Match(mk) {
				t.Errorf("%s: %s/Makefile has no build-%s target", id, uri, id)
			}
			if !target.Match(rootMk) {
				t.Errorf("%s: the root Makefile has no build-%s target", id, id)
			}
			// What sam build runs: make --makefile <CodeUri>/Makefile
			// build-<id> in a scratch directory, ARTIFACTS_DIR set.
			for arch, goarch := range map[string]string{"": wantArch, "x86_64": "amd64", "amd64": "amd64", "arm64": "arm64"} {
				scratch, artifacts := t.TempDir(), t.TempDir()
				args := []string{"-n", "--makefile", filepath.Join(codeDir, "Makefile"), "build-" + id, "ARTIFACTS_DIR=" + artifacts}
				if arch != "" {
					args = append(args, "ARCH="+arch)
				}
				cmd := exec.Command("make", args...)
				cmd.Dir = scratch
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("%s ARCH=%q: make: %v\n%s", id, arch, err, out)
					continue
				}
				want := regexp.MustCompile(`GOARCH=` + goarch + ` .*go build .*-tags lambda\.norpc .*-o ` + regexp.QuoteMeta(filepath.Join(artifacts, "bootstrap")) + ` \./functions/` + dir + `\b`)
				if !want.Match(out) {
					t.Errorf("%s ARCH=%q: make would not build ./functions/%s for GOARCH=%s into ARTIFACTS_DIR:\n%s", id, arch, dir, goarch, out)
				}
			}
		}
		if n != 2 {
			t.Errorf("%d AWS::Serverless::Function resources, want 2", n)
		}
	})

	t.Run("TimeoutScheduleMargin", func(t *testing.T) {
		// The defaults and what samconfig.toml deploys: the timeout fits the
		// schedule's period, and the deadline margin leaves at least half of
		// the run for reading (what CloudFormation's Rules cannot compare).
		sets := map[string]map[string]string{"defaults": params}
		sc, err := os.ReadFile("../../samconfig.toml")
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
				if _, ok := params[p[1]]; !ok {
					t.Errorf("samconfig.toml sets parameter %s, which template.yaml does not have", p[1])
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
		_, body := entries(section(t, tpl, "Parameters"))
		lo, _ := field(body["FunctionTimeout"], 4, "MinValue")
		min, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("FunctionTimeout MinValue %q", lo)
		}
		var want []string
		for i := min; i <= 60; i++ {
			want = append(want, strconv.Quote(strconv.Itoa(i)))
		}
		if !strings.Contains(strings.Join(section(t, tpl, "Rules"), "\n"), "- ["+strings.Join(want, ", ")+"]") {
			t.Errorf("Rules: no list of the timeouts %s to 60 for rate(1 minute)", lo)
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
