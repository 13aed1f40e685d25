package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/boomerang-events/boomerang/store"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// privateRedis is the benchmark's own redis-server: on a free loopback
// port, without persistence, pinned to the load generator's core. It is
// flushed between phases; no other Redis is ever touched.
type privateRedis struct {
	proc    *child
	addr    string
	version string
	rdb     *redis.Client // one connection: every command is one round trip

	mu sync.Mutex // guards own and trips
	// own counts the commands the benchmark sent, by name, and trips its
	// round trips, so they can be taken out of the commandstats deltas.
	own   map[string]int64
	trips int64
}

// startRedis starts redis-server on a free port and waits until it answers.
func (b *bench) startRedis(ctx context.Context) (*privateRedis, error) {
	var lastErr error
	for range 3 { // the free port may be taken between the probe and the start
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		argv := b.pinned(b.loadCore, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no", "--dir", b.tmp)
		p, err := b.kids.startChild(ctx, "redis", b.tmp, argv, b.env, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w (the benchmark needs redis-server on the PATH: apt-get install redis-server)", err)
		}
		r := &privateRedis{proc: p, addr: "127.0.0.1:" + strconv.Itoa(port), own: map[string]int64{}}
		r.rdb = redis.NewClient(&redis.Options{
			Addr: r.addr, Protocol: 2, DisableIdentity: true,
			PoolSize: 1, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second,
		})
		if lastErr = r.waitReady(ctx); lastErr == nil {
			in, err := r.info(ctx, "server")
			if err != nil {
				r.close()
				return nil, err
			}
			r.version = in.fields["redis_version"]
			return r, nil
		}
		r.close()
		lastErr = fmt.Errorf("%w: %s", lastErr, p.logTail(500))
	}
	return nil, fmt.Errorf("redis-server: %w", lastErr)
}

// waitReady waits, at most 10s, until the server answers PING.
func (r *privateRedis) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if r.proc.exited() {
			return errors.New("exited at start")
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("does not answer: %w", err)
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// url is the redis:// URL of database 0.
func (r *privateRedis) url() string { return "redis://" + r.addr + "/0" }

// reset empties the server and its statistics, for a fresh phase.
func (r *privateRedis) reset(ctx context.Context) error {
	if err := r.rdb.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("redis flushall: %w", err)
	}
	if err := r.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return fmt.Errorf("redis config resetstat: %w", err)
	}
	return nil
}

// info runs INFO on the given sections and counts it as the benchmark's own.
func (r *privateRedis) info(ctx context.Context, sections ...string) (info, error) {
	r.count("info")
	s, err := r.rdb.Info(ctx, sections...).Result()
	if err != nil {
		return info{}, fmt.Errorf("redis info: %w", err)
	}
	return parseInfo(s)
}

// zcard returns the cardinality of each key, counted as the benchmark's own
// commands.
func (r *privateRedis) zcard(ctx context.Context, names ...string) ([]int64, error) {
	out := make([]int64, len(names))
	cmds := make([][]*redis.IntCmd, len(names))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			// The keys of this version's partitions, and the one key of a
			// version before partitions (a --compare binary).
			keys := append(store.PartitionKeys(store.DefaultPrefix, store.DefaultPartitions, name),
				"{"+store.DefaultPrefix+"}:"+name)
			for _, k := range keys {
				cmds[i] = append(cmds[i], p.ZCard(ctx, k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis zcard %v: %w", names, err)
	}
	calls := 0
	for _, c := range cmds {
		calls += len(c)
	}
	r.countPipeline("zcard", calls)
	for i := range names {
		for _, c := range cmds[i] {
			out[i] += c.Val()
		}
	}
	return out, nil
}

// count counts one command of the benchmark's own.
func (r *privateRedis) count(name string) {
	r.countPipeline(name, 1)
}

// countPipeline counts calls commands of the benchmark's own, sent in one
// round trip.
func (r *privateRedis) countPipeline(name string, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.own[name] += int64(calls)
	r.trips++
}

// ownCalls returns a copy of the counts of the benchmark's own commands and
// their total (each one a round trip).
func (r *privateRedis) ownCalls() (map[string]int64, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.own), r.trips
}

// snapshot is INFO commandstats and stats at one moment, with the count of
// the benchmark's own commands up to and including that INFO.
type snapshot struct {
	info
	own      map[string]int64
	ownReads int64
}

// snapshot takes a snapshot.
func (r *privateRedis) snapshot(ctx context.Context) (snapshot, error) {
	in, err := r.info(ctx, "commandstats", "stats")
	if err != nil {
		return snapshot{}, err
	}
	own, n := r.ownCalls()
	return snapshot{info: in, own: own, ownReads: n}, nil
}

// since returns what Redis executed between two snapshots, less the
// benchmark's own commands. An INFO is counted in commandstats only once it
// has run, so the INFO of a counts in b and that of b does not: the own
// commands between are b.own - a.own either way.
func (b snapshot) since(a snapshot) commandDelta {
	own := make(map[string]int64, len(b.own))
	for k, v := range b.own {
		own[k] = v - a.own[k]
	}
	return deltaOf(a.info, b.info, own, b.ownReads-a.ownReads)
}

// calibration is what a tiny experiment showed about how this Redis counts
// commands in INFO commandstats.
type calibration struct {
	scriptCommandsCounted bool  // a SET run by EVAL shows up as cmdstat_set
	txCommandsCounted     bool  // MULTI, the queued commands and EXEC each count
	evalReads             int64 // read events for one EVAL (1 expected)
	pipelineReads         int64 // read events for one MULTI/SET/INCR/EXEC pipeline (1 expected)
	err                   error
}

// calibrate runs EVAL with one SET inside, then one MULTI/SET/INCR/EXEC
// pipeline, and checks how commandstats and total_reads_processed count
// them. It resets the server before and after.
func (r *privateRedis) calibrate(ctx context.Context) (c calibration) {
	if c.err = r.reset(ctx); c.err != nil {
		return c
	}
	defer func() {
		if err := r.reset(ctx); c.err == nil {
			c.err = err
		}
	}()
	// go-redis sends pipelines over a pool of their own; open its
	// connection (a HELLO) before the experiment.
	if _, c.err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Ping(ctx)
		return nil
	}); c.err != nil {
		return c
	}
	s0, err := r.snapshot(ctx)
	if err != nil {
		c.err = err
		return c
	}
	if c.err = r.rdb.Eval(ctx, "redis.call('SET', KEYS[1], 'x') return 1", []string{"bench:calibrate:a"}).Err(); c.err != nil {
		return c
	}
	s1, err := r.snapshot(ctx)
	if err != nil {
		c.err = err
		return c
	}
	_, c.err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "bench:calibrate:b", "y", 0)
		p.Incr(ctx, "bench:calibrate:c")
		return nil
	})
	if c.err != nil {
		return c
	}
	s2, err := r.snapshot(ctx)
	if err != nil {
		c.err = err
		return c
	}
	d1, d2 := s1.since(s0), s2.since(s1)
	c.scriptCommandsCounted = d1.calls["eval"] == 1 && d1.calls["set"] == 1 && d1.total() == 2
	c.evalReads = d1.reads
	c.txCommandsCounted = d2.calls["multi"] == 1 && d2.calls["set"] == 1 && d2.calls["incr"] == 1 &&
		d2.calls["exec"] == 1 && d2.total() == 4
	c.pipelineReads = d2.reads
	return c
}

// close stops the server.
func (r *privateRedis) close() error {
	r.rdb.Close()
	return r.proc.stop(5 * time.Second)
}
