package shardline

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Module is Shardline's module path: `version` names its version when a
// program is built on it from another module.
const Module = "github.com/shardline/shardline"

func (a *App) printVersion(w io.Writer) error {
	bi, _ := debug.ReadBuildInfo()
	_, err := io.WriteString(w, versionText(a.name, a.commit, bi))
	return err
}

// versionText is what `version` prints: the program and its module's
// version from the build information ("(devel)" for a build from a
// checkout), Shardline's version when the program is another module built
// on it, the VCS commit the binary was built from (with its time, and
// "modified" when the work tree had changes), and the Go version and
// platform.
func versionText(prog, commit string, bi *debug.BuildInfo) string {
	var b strings.Builder
	version := ""
	if bi != nil {
		version = bi.Main.Version
	}
	if version == "" {
		version = "(devel)"
	}
	if bi != nil && bi.Main.Path != "" && bi.Main.Path != Module {
		fmt.Fprintf(&b, "%s %s (%s)\n", prog, version, bi.Main.Path)
		sv := "unknown"
		for _, d := range bi.Deps {
			if d.Path == Module {
				sv = d.Version
				if d.Replace != nil {
					sv += " => " + d.Replace.Path
					if d.Replace.Version != "" {
						sv += " " + d.Replace.Version
					}
				}
			}
		}
		fmt.Fprintf(&b, "shardline %s\n", sv)
	} else {
		fmt.Fprintf(&b, "%s %s\n", prog, version)
	}
	settings := map[string]string{}
	goVersion := runtime.Version()
	if bi != nil {
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	if settings["vcs.revision"] == "" && commit != "" {
		settings["vcs.revision"] = commit
	}
	if rev := settings["vcs.revision"]; rev != "" {
		var extra []string
		if t := settings["vcs.time"]; t != "" {
			extra = append(extra, t)
		}
		if settings["vcs.modified"] == "true" {
			extra = append(extra, "modified")
		}
		fmt.Fprintf(&b, "commit %s", rev)
		if len(extra) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(&b)
	} else {
		fmt.Fprintln(&b, "commit unknown (built without VCS information: make build stamps it)")
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, goos, goarch)
	return b.String()
}
