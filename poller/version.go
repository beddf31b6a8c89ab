package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the release, when the build sets it:
//
//	go build -ldflags "-X main.version=v1.2.3" ./poller
//
// Otherwise the module's version from the build information is shown
// ("(devel)" for a build from a checkout).
var version string

// commit is the VCS commit, when the build sets it (make build does, for
// git worktrees, whose commit the go command does not stamp):
//
//	go build -ldflags "-X main.commit=$(git rev-parse HEAD)" ./poller
var commit string

func printVersion(w io.Writer) error {
	bi, _ := debug.ReadBuildInfo()
	_, err := io.WriteString(w, versionText(version, commit, bi))
	return err
}

// versionText is what `poller version` prints: the version, the VCS
// commit the binary was built from (with its time, and "modified" when the
// work tree had changes), and the Go version and platform.
func versionText(version, commit string, bi *debug.BuildInfo) string {
	var b strings.Builder
	if version == "" && bi != nil {
		version = bi.Main.Version
	}
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "poller %s\n", version)
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
