package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of the clusters
// StartCluster starts: how long a master may stay silent before its
// replica takes over. Low, so a failover takes a few seconds; not so low
// that a node slowed down by a busy machine is failed over.
const ClusterNodeTimeout = 2 * time.Second

// clusterReadyTimeout bounds how long StartCluster waits for the cluster to
// be formed and every replica to be in sync.
const clusterReadyTimeout = 30 * time.Second

// LocalCluster is a private Redis Cluster of redis-server processes on
// loopback ports, started by StartCluster.
type LocalCluster struct {
	// URL reaches the cluster: redis+cluster:// with every node as a seed.
	URL string
	// Nodes are the cluster's processes, in the order of their ports.
	Nodes []*ClusterNode
}

// ClusterNode is one redis-server of a LocalCluster, which a test may kill,
// stop and start again. Its identity and view of the cluster are kept on
// disk (nodes.conf) across restarts; its data is not (no AOF, no RDB), so a
// restarted node comes back empty and syncs from its master.
type ClusterNode struct {
	// Addr is the node's address, 127.0.0.1:port.
	Addr string

	port, busPort int
	dir           string
	cmd           *exec.Cmd
	exited        chan struct{} // closed when cmd's process has been waited for
}

// StartCluster starts a Redis Cluster of masters masters, each with
// replicasPerMaster replicas, on free loopback ports in t.TempDir(), and
// waits until every node sees the cluster ok and every replica is in sync.
// Every process is killed at the test's end. It skips the test when
// redis-server or redis-cli is not installed, and fails it instead when
// CI=true.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *LocalCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("redistest: %s not installed (CI=true: not skipping)", bin)
			}
			t.Skipf("redistest: %s not installed: no local cluster", bin)
		}
	}
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", masters)
	}
	n := masters * (1 + replicasPerMaster)
	c := &LocalCluster{}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.kill()
		}
	})
	dir := t.TempDir()
	var addrs []string
	for i := range n {
		node := &ClusterNode{port: freePort(t), busPort: freePort(t), dir: filepath.Join(dir, strconv.Itoa(i))}
		node.Addr = "127.0.0.1:" + strconv.Itoa(node.port)
		if err := os.Mkdir(node.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, node)
		addrs = append(addrs, node.Addr)
		node.Start(t)
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")

	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitReady(t, clusterReadyTimeout)
	return c
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitReady waits up to timeout until every running node reports
// cluster_state:ok and knows every node, and every replica's link to its
// master is up. It fails the test, with each node's view, when that does
// not happen in time.
func (c *LocalCluster) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := c.notReady()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready after %v: %s", timeout, problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notReady describes what is not ready yet, or returns "".
func (c *LocalCluster) notReady() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	running := 0
	for _, n := range c.Nodes {
		if n.Running() {
			running++
		}
	}
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		rdb := n.client()
		info, err := rdb.ClusterInfo(ctx).Result()
		if err != nil {
			rdb.Close()
			return n.Addr + ": " + err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok") {
			rdb.Close()
			return n.Addr + ": cluster_state is not ok"
		}
		role, err := rdb.Do(ctx, "ROLE").Slice()
		rdb.Close()
		if err != nil {
			return n.Addr + ": ROLE: " + err.Error()
		}
		if role[0] == "slave" && (len(role) < 4 || role[3] != "connected") {
			return fmt.Sprintf("%s: replica not in sync with its master (%v)", n.Addr, role)
		}
	}
	return ""
}

// Masters returns the running nodes that are masters now.
func (c *LocalCluster) Masters(t testing.TB) []*ClusterNode {
	t.Helper()
	var ms []*ClusterNode
	for _, n := range c.Nodes {
		if n.Running() && n.Role(t) == "master" {
			ms = append(ms, n)
		}
	}
	return ms
}

// Node returns the node at addr (host:port), or nil.
func (c *LocalCluster) Node(addr string) *ClusterNode {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Client returns a cluster client on c, closed at the test's end.
func (c *LocalCluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	opts, err := ParseClusterURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClusterClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// client is a single-node client on n, without retries.
func (n *ClusterNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.Addr, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
}

// Role returns "master" or "replica" as the node says now (ROLE), or
// "down" when it does not answer.
func (n *ClusterNode) Role(t testing.TB) string {
	t.Helper()
	if !n.Running() {
		return "down"
	}
	rdb := n.client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	role, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 {
		return "down"
	}
	if role[0] == "slave" {
		return "replica"
	}
	return fmt.Sprint(role[0])
}

// Running reports whether the node's process is running.
func (n *ClusterNode) Running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Start starts the node's redis-server (again) and waits until it answers
// PING. After a restart it rejoins the cluster from its nodes.conf; use
// LocalCluster.WaitReady to wait for the cluster.
func (n *ClusterNode) Start(t testing.TB) {
	t.Helper()
	if n.Running() {
		t.Fatalf("redistest: node %s is already running", n.Addr)
	}
	n.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir,
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(n.busPort),
		"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout/time.Millisecond)),
		// A replica takes over however long ago it last heard from its
		// master: the test decides what is lost, not Redis' heuristics.
		"--cluster-replica-validity-factor", "0",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(n.dir, "redis.log"))
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() { cmd.Wait(); close(exited) }()

	rdb := n.client()
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if !n.Running() {
			log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			t.Fatalf("redistest: redis-server on %s exited:\n%s", n.Addr, log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: redis-server on %s did not answer", n.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the node's process with SIGKILL, as a crash would, and waits
// for it to be gone.
func (n *ClusterNode) Kill(t testing.TB) {
	t.Helper()
	n.kill()
}

func (n *ClusterNode) kill() {
	if !n.Running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Stop stops the node gracefully (SIGTERM), as an operator would, and
// waits for it to exit (SIGKILL after 10s).
func (n *ClusterNode) Stop(t testing.TB) {
	t.Helper()
	if !n.Running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.kill()
	}
}

// Pause stops the node's process (SIGSTOP) without killing it: it neither
// answers nor replicates until Resume, like a node stalled by its machine.
func (n *ClusterNode) Pause(t testing.TB) {
	t.Helper()
	if n.Running() {
		n.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume continues a paused node (SIGCONT).
func (n *ClusterNode) Resume(t testing.TB) {
	t.Helper()
	if n.Running() {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// ReplicaOf returns a running replica of master, or nil.
func (c *LocalCluster) ReplicaOf(t testing.TB, master *ClusterNode) *ClusterNode {
	t.Helper()
	for _, n := range c.Nodes {
		if n == master || !n.Running() {
			continue
		}
		rdb := n.client()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		role, err := rdb.Do(ctx, "ROLE").Slice()
		cancel()
		rdb.Close()
		// A replica's ROLE: "slave", master ip, master port, state, offset.
		if err == nil && len(role) >= 3 && role[0] == "slave" && fmt.Sprint(role[1], ":", role[2]) == master.Addr {
			return n
		}
	}
	return nil
}
