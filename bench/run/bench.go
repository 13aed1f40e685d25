package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// bench is one benchmark run: its options, its temporary directory, the
// binaries it built and the children it started.
type bench struct {
	opts     options
	progress io.Writer
	root     string // the module's root directory
	tmp      string // binaries, configs, logs, Redis's working directory
	bin      string // tmp/bin
	env      []string
	kids     children
	started  time.Time

	pin         bool   // taskset is used
	pinNote     string // why not, when it is not
	srvCore     string // core of the servers
	loadCore    string // core of the load generator and Redis
	redis       *privateRedis
	clusterURL  string // the scaling mode's cluster, when the servers use it instead of redis
	goVersion   string
	revision    string // the code measured: git commit, and whether tracked files differ from it
	refRevision string // --compare's ref and its commit
}

func newBench(opts options, progress io.Writer) (*bench, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "boomerang-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{
		opts: opts, progress: progress, root: root, tmp: tmp, bin: filepath.Join(tmp, "bin"),
		env: childEnv(os.Environ()), srvCore: "0", loadCore: "1", started: time.Now(),
	}
	b.pin, b.pinNote = pinning(opts.noPin)
	return b, nil
}

// close stops every child still running and removes the temporary
// directory.
func (b *bench) close() {
	if b.redis != nil {
		b.redis.rdb.Close()
	}
	b.kids.killAll()
	os.RemoveAll(b.tmp)
}

// logf prints a progress line.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench %5.1fs: %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// moduleRoot finds the directory of Boomerang's go.mod, from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 { // bounded: a path has fewer levels than that
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(sc.Text()) == "module github.com/boomerang-events/boomerang" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("run from inside the boomerang module (no go.mod of github.com/boomerang-events/boomerang found)")
}

// childEnv is the environment of the children: this one without the
// variables that would change what is measured (BOOMERANG_* would override
// the generated configuration; GOMAXPROCS is set per child).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "BOOMERANG_") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// pinning reports whether processes can be pinned with taskset, and why not.
func pinning(disabled bool) (bool, string) {
	switch {
	case disabled:
		return false, "not pinned: --no-pin"
	case runtime.NumCPU() < 2:
		return false, fmt.Sprintf("not pinned: this machine has %d core; servers, Redis and the load generator share it", runtime.NumCPU())
	}
	path, err := exec.LookPath("taskset")
	if err != nil {
		return false, "not pinned: taskset is not installed (util-linux); processes float over all cores"
	}
	if err := exec.Command(path, "-c", "0,1", "true").Run(); err != nil {
		return false, fmt.Sprintf("not pinned: taskset -c 0,1 fails here (%v)", err)
	}
	return true, ""
}

// pinned returns argv run on core, through taskset when pinning.
func (b *bench) pinned(core string, argv ...string) []string {
	if !b.pin {
		return argv
	}
	return append([]string{"taskset", "-c", core}, argv...)
}

// build compiles the five programs into b.bin.
func (b *bench) build(ctx context.Context) error {
	if err := os.MkdirAll(b.bin, 0o755); err != nil {
		return err
	}
	if b.opts.profile != "" {
		if err := os.MkdirAll(b.opts.profile, 0o755); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin+string(filepath.Separator),
		"./cmd/server", "./bench/baseline", "./cmd/loadgen", "./bench/seedlike", "./bench/limit")
	cmd.Dir = b.root
	cmd.Env = b.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return fmt.Errorf("go version: %w", err)
	}
	b.goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	b.revision = revision(ctx, b.root)
	if b.opts.compare != "" {
		return b.buildRef(ctx)
	}
	return nil
}

// buildRef compiles cmd/server as it is at --compare's ref into
// b.bin/server-ref: the ref's tree is exported with git archive (the
// checkout is not touched) and built with its own go.mod.
func (b *bench) buildRef(ctx context.Context) error {
	ref := b.opts.compare
	commit, err := exec.CommandContext(ctx, "git", "-C", b.root, "rev-parse", "--short=12", "--verify", ref+"^{commit}").Output()
	if err != nil {
		return fmt.Errorf("--compare %s: not a commit of this repository: %w", ref, err)
	}
	b.refRevision = ref + " (commit " + strings.TrimSpace(string(commit)) + ")"
	src := filepath.Join(b.tmp, "ref-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", b.root, "archive", "--format=tar", strings.TrimSpace(string(commit)))
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return fmt.Errorf("git archive %s: %w", ref, err)
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("untar %s: %w", ref, err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(b.bin, "server-ref"), "./cmd/server")
	build.Dir = src
	build.Env = b.env
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", ref, err, out)
	}
	return nil
}

// revision describes the code in root: its git commit and how many tracked
// files differ from it. It only reads (--no-optional-locks: not even the
// index's stat cache is refreshed).
func revision(ctx context.Context, root string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"--no-optional-locks", "-C", root}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := git("rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "unknown (not a git checkout, or git is missing)"
	}
	status, err := git("status", "--porcelain", "--untracked-files=no")
	switch {
	case err != nil:
		return "commit " + head
	case status == "":
		return "commit " + head + ", no local changes"
	default:
		return fmt.Sprintf("commit %s plus uncommitted changes to %d tracked files", head, len(strings.Split(status, "\n")))
	}
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
