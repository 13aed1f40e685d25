package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the benchmark started, in its own process group. It is
// stopped with its whole group when its context ends, when stop is called,
// or, as a last resort, by the kernel when the benchmark itself dies
// (Pdeathsig).
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string        // its stderr, and stdout unless the caller took it
	done    chan struct{} // closed when Wait has returned
	waitErr error         // set before done is closed
}

// children is the set of children still running, so that every exit path
// can kill what is left.
type children struct {
	mu  sync.Mutex // guards set
	set map[*child]struct{}
}

// killAll kills the process group of every child still running and waits
// for each, at most a few seconds in all.
func (cs *children) killAll() {
	cs.mu.Lock()
	left := make([]*child, 0, len(cs.set))
	for c := range cs.set {
		left = append(left, c)
	}
	cs.mu.Unlock()
	deadline := time.After(5 * time.Second)
	for _, c := range left {
		c.signal(syscall.SIGKILL)
		select {
		case <-c.done:
		case <-deadline:
		}
	}
}

func (cs *children) add(c *child) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.set == nil {
		cs.set = map[*child]struct{}{}
	}
	cs.set[c] = struct{}{}
}

func (cs *children) remove(c *child) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.set, c)
}

// startChild starts argv with env. Its stdout and stderr go to stdout and
// stderr, or when nil to a log file in logDir. When ctx ends the process
// group gets SIGTERM, and the process SIGKILL 5s later if it is still there.
func (cs *children) startChild(ctx context.Context, name, logDir string, argv, env []string, stdout, stderr io.Writer) (*child, error) {
	logPath := fmt.Sprintf("%s/%s-%d.log", logDir, name, time.Now().UnixNano())
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	cs.add(c)
	go func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		cs.remove(c)
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id. Children are started through taskset,
// which execs the program, so it is the program's pid.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the child's process group.
func (c *child) signal(sig syscall.Signal) {
	if !c.exited() {
		syscall.Kill(-c.pid(), sig) // ESRCH when it just ended
	}
}

// stop asks the child to end (SIGTERM to its group), waits up to grace, then
// kills the group, and returns how it ended: nil for a clean exit or for the
// SIGTERM it was sent.
func (c *child) stop(grace time.Duration) error {
	c.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.signal(syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("%s did not stop within %v; killed", c.name, grace)
	}
	if errors.Is(c.waitErr, context.Canceled) || errors.Is(c.waitErr, context.DeadlineExceeded) {
		return nil // it exited cleanly after its context ended
	}
	var exit *exec.ExitError
	if errors.As(c.waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return c.waitErr
}

// logTail returns the last n bytes of the child's log.
func (c *child) logTail(n int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return strings.TrimSpace(string(b))
}

// clockTick is USER_HZ, the unit of the CPU times in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// cpuTime returns the user plus system CPU time the process has used, from
// /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// memory returns VmRSS and VmHWM (peak RSS) of the process, in bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(string(b))
}

// parseStatusMemory reads VmRSS and VmHWM from a /proc/<pid>/status text.
func parseStatusMemory(s string) (rss, peak int64, err error) {
	found := 0
	for line := range strings.Lines(s) {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status: cannot read %s %q", name, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("status: no VmRSS and VmHWM")
	}
	return rss, peak, nil
}
