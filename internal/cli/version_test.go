package cli

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "boomerang devel (commit unknown, unknown)"},
		{"work tree without vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "boomerang devel (commit unknown, unknown)"},
		{"go install @latest", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "boomerang v1.2.0 (commit unknown, unknown)"},
		{"work tree with vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", "3f2a9c1d0e4b5a6978812345", "vcs.time", "2026-11-30T10:00:00Z", "vcs.modified", "false")},
			"boomerang devel (commit 3f2a9c1d0e4b, 2026-11-30T10:00:00Z)"},
		{"modified work tree", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-0.20261130100000-3f2a9c1d0e4b"},
			Settings: vcs("vcs.revision", "3f2a9c1d0e4b5a6978812345", "vcs.time", "2026-11-30T10:00:00Z", "vcs.modified", "true")},
			"boomerang v1.3.0-0.20261130100000-3f2a9c1d0e4b (commit 3f2a9c1d0e4b+dirty, 2026-11-30T10:00:00Z)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeBuild(tc.bi); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadConfigVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		t.Run(arg, func(t *testing.T) {
			if _, err := loadConfig([]string{arg}, mapEnv(nil)); !errors.Is(err, errVersion) {
				t.Errorf("got error %v, want errVersion", err)
			}
		})
	}
}

// The binary (this test binary running Main, see TestMain) prints its
// version on stdout and exits 0, without starting a server.
func TestVersionFlag(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--version")
	cmd.Env = append(os.Environ(), "BOOMERANG_TEST_SERVER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	if !regexp.MustCompile(`^boomerang \S+ \(commit \S+, \S+\)\n$`).Match(out) {
		t.Errorf("--version: got %q, want \"boomerang VERSION (commit COMMIT, TIME)\\n\"", out)
	}
}
