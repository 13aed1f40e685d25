package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
)

// Kinds of Redis the scaling mode runs on.
const (
	kindSingle  = "single"
	kindCluster = "cluster"
)

// deployment is the Redis that the scaling mode's instances share: the
// private redis-server, or a private cluster of masters started like
// scripts/redis-cluster does (loopback ports, no persistence, no replicas).
// Each node is a privateRedis, so the benchmark's own commands are counted
// per node and taken out of its statistics.
type deployment struct {
	kind  string
	url   string          // Boomerang's redis_url
	nodes []*privateRedis // the redis-server processes; a cluster's are all masters
	// owner maps each of Boomerang's queue and index keys (every
	// partition's) to the index in nodes of the master that holds it; nil
	// for a single node.
	owner map[string]int
}

// scaledKeys are the per-partition keys the scaling mode counts.
var scaledKeys = []string{keyEvents, keyCallbacks, keyRecent, keyDead}

// clusterReady bounds the wait for a new cluster to be formed.
const clusterReady = 30 * time.Second

// startCluster starts masters redis-servers in cluster mode on free
// loopback ports, forms the cluster with redis-cli --cluster create, and
// waits until every node reports cluster_state:ok.
func (b *bench) startCluster(ctx context.Context, masters int) (*deployment, error) {
	d := &deployment{kind: kindCluster}
	var addrs []string
	for i := range masters {
		port, err := freePort()
		if err != nil {
			d.close()
			return nil, err
		}
		bus, err := freePort()
		if err != nil {
			d.close()
			return nil, err
		}
		dir := filepath.Join(b.tmp, fmt.Sprintf("cluster-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.close()
			return nil, err
		}
		argv := b.pinned(b.loadCore, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no")
		p, err := b.kids.startChild(ctx, fmt.Sprintf("redis-cluster-%d", i), b.tmp, argv, b.env, nil, nil)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("%w (the scaling mode needs redis-server and redis-cli on the PATH)", err)
		}
		r := newNodeRedis(p, "127.0.0.1:"+strconv.Itoa(port))
		d.nodes = append(d.nodes, r)
		if err := r.waitReady(ctx); err != nil {
			d.close()
			return nil, fmt.Errorf("cluster node %s: %w: %s", r.addr, err, p.logTail(500))
		}
		addrs = append(addrs, r.addr)
	}
	d.url = "redis+cluster://" + strings.Join(addrs, ",")

	cctx, cancel := context.WithTimeout(ctx, clusterReady)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		d.close()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := d.waitClusterOK(cctx); err != nil {
		d.close()
		return nil, err
	}
	if err := d.mapOwners(cctx); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// newNodeRedis is a privateRedis on the redis-server p listening on addr,
// with the same one-connection client as startRedis's.
func newNodeRedis(p *child, addr string) *privateRedis {
	return &privateRedis{
		proc: p, addr: addr, own: map[string]int64{},
		rdb: redis.NewClient(&redis.Options{
			Addr: addr, Protocol: 2, DisableIdentity: true,
			PoolSize: 1, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second,
		}),
	}
}

// waitClusterOK waits until every node reports cluster_state:ok and knows
// every other node.
func (d *deployment) waitClusterOK(ctx context.Context) error {
	want := fmt.Sprintf("cluster_known_nodes:%d", len(d.nodes))
	for {
		problem := ""
		for _, n := range d.nodes {
			s, err := n.rdb.ClusterInfo(ctx).Result()
			switch {
			case err != nil:
				problem = n.addr + ": " + err.Error()
			case !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, want):
				problem = n.addr + ": cluster not ok yet"
			}
			if problem != "" {
				break
			}
		}
		if problem == "" {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster not ready within %v: %s", clusterReady, problem)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// mapOwners finds which master holds each of Boomerang's per-partition
// queue and index keys (CLUSTER SLOTS and CLUSTER KEYSLOT), so that the
// benchmark can count them node by node. Its commands run before the
// statistics are reset.
func (d *deployment) mapOwners(ctx context.Context) error {
	byAddr := map[string]int{}
	for i, n := range d.nodes {
		byAddr[n.addr] = i
	}
	slots, err := d.nodes[0].rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster slots: %w", err)
	}
	d.owner = map[string]int{}
	for _, name := range scaledKeys {
		for _, k := range store.PartitionKeys(store.DefaultPrefix, store.DefaultPartitions, name) {
			slot, err := d.nodes[0].rdb.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("cluster keyslot %s: %w", k, err)
			}
			found := false
			for _, s := range slots {
				if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
					i, ok := byAddr[s.Nodes[0].Addr]
					if !ok {
						return fmt.Errorf("cluster slots: master %s is not one of ours", s.Nodes[0].Addr)
					}
					d.owner[k], found = i, true
				}
			}
			if !found {
				return fmt.Errorf("cluster slots: no master for slot %d", slot)
			}
		}
	}
	return nil
}

// reset empties every node and its statistics.
func (d *deployment) reset(ctx context.Context) error {
	for _, n := range d.nodes {
		if err := n.reset(ctx); err != nil {
			return fmt.Errorf("%s: %w", n.addr, err)
		}
	}
	return nil
}

// zcard returns, for each name, the sum of ZCARD over every partition's
// key of that name, asking each node for the keys it holds. The commands
// are counted as the benchmark's own on each node.
func (d *deployment) zcard(ctx context.Context, names ...string) ([]int64, error) {
	out := make([]int64, len(names))
	for i, n := range d.nodes {
		var cmds []*redis.IntCmd
		var of []int // index in names of each command
		_, err := n.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, name := range names {
				for _, k := range store.PartitionKeys(store.DefaultPrefix, store.DefaultPartitions, name) {
					if d.owner != nil && d.owner[k] != i {
						continue
					}
					cmds = append(cmds, p.ZCard(ctx, k))
					of = append(of, j)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redis %s: zcard %v: %w", n.addr, names, err)
		}
		if len(cmds) > 0 {
			n.countPipeline("zcard", len(cmds))
		}
		for c, cmd := range cmds {
			out[of[c]] += cmd.Val()
		}
	}
	return out, nil
}

// waitDrained polls the named queues until they are empty or bound has
// passed, and returns what is left in them.
func (d *deployment) waitDrained(ctx context.Context, bound time.Duration, names ...string) (int64, error) {
	return pollDrained(ctx, bound, func(ctx context.Context) ([]int64, error) { return d.zcard(ctx, names...) })
}

// nodeSnapshot is one node's counters at one moment.
type nodeSnapshot struct {
	snapshot               // INFO commandstats and stats, with the benchmark's own commands
	cpu      float64       // used_cpu_user + used_cpu_sys, seconds
	procCPU  time.Duration // the process's CPU time from /proc
}

// snapshots takes a snapshot of every node: INFO cpu, then INFO
// commandstats and stats. The INFO cpu is one of the benchmark's own
// commands and is taken out like the others.
func (d *deployment) snapshots(ctx context.Context) ([]nodeSnapshot, error) {
	out := make([]nodeSnapshot, len(d.nodes))
	for i, n := range d.nodes {
		c, err := n.info(ctx, "cpu")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.addr, err)
		}
		out[i].cpu = infoFloat(c, "used_cpu_user") + infoFloat(c, "used_cpu_sys")
		out[i].procCPU, _ = cpuTime(n.proc.pid())
		if out[i].snapshot, err = n.snapshot(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", n.addr, err)
		}
	}
	return out, nil
}

// nodeWork is what one node did between two snapshots, the benchmark's own
// commands taken out.
type nodeWork struct {
	commands int64 // total_commands_processed: scripts' and transactions' commands included
	work     commandDelta
	cpu      float64 // seconds, from INFO cpu
	procCPU  time.Duration
}

// workSince returns what each node did from a to b.
func workSince(a, b []nodeSnapshot) []nodeWork {
	out := make([]nodeWork, len(a))
	for i := range a {
		var own int64
		for k, v := range b[i].own {
			own += v - a[i].own[k]
		}
		out[i] = nodeWork{
			commands: b[i].int("total_commands_processed") - a[i].int("total_commands_processed") - own,
			work:     b[i].since(a[i].snapshot),
			cpu:      b[i].cpu - a[i].cpu,
			procCPU:  b[i].procCPU - a[i].procCPU,
		}
	}
	return out
}

// infoFloat returns the float field key of in, 0 when absent.
func infoFloat(in info, key string) float64 {
	v, _ := strconv.ParseFloat(in.fields[key], 64)
	return v
}

// close stops every node.
func (d *deployment) close() {
	for _, n := range d.nodes {
		n.close()
	}
}
