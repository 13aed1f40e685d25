package cli

import (
	"errors"
	"runtime/debug"
)

// errVersion is returned by loadConfig for --version: the caller prints
// version() instead of running.
var errVersion = errors.New("version requested")

// version describes the running binary from its build information.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(bi)
}

// describeBuild says which Boomerang bi is: its module version ("devel"
// for a build from a work tree), the commit and the commit's time it was
// built from ("unknown" when the build recorded no VCS information), and
// "+dirty" when the work tree had changes:
//
//	boomerang v1.2.0 (commit 3f2a9c1d0e4b, 2026-11-30T10:00:00Z)
//	boomerang devel (commit 3f2a9c1d0e4b+dirty, 2026-11-30T10:00:00Z)
//	boomerang devel (commit unknown, unknown)
func describeBuild(bi *debug.BuildInfo) string {
	v, commit, at, dirty := "devel", "unknown", "unknown", false
	if bi != nil {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "+dirty"
	}
	return "boomerang " + v + " (commit " + commit + ", " + at + ")"
}
