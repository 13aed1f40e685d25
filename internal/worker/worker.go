// Package worker runs jobs leased from a store queue. A Pool claims due jobs
// in batches for its free workers, runs them, renews their leases while they
// run, records their outcomes in batches, and when it stops gives the leases
// of the jobs it could not finish back to the queue.
//
// Nothing here is needed for correctness: the queue in Redis is the truth,
// and a pool that dies leaves leases that expire and are claimed again.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/boomerang-events/boomerang/internal/batch"
	"github.com/boomerang-events/boomerang/store"
)

// Queue is the part of the store a Pool works on, for jobs of type J with
// outcomes of type O: store.EventQueue, store.InlineQueue and
// store.CallbackQueue are ones.
type Queue[J, O any] interface {
	// Claim leases up to n due jobs. With none, the time is when the first
	// job will be due (zero: none queued). With some, it is zero when the
	// queue had no more due, or now when due jobs were left that this
	// process could not take yet (a destination's share of the workers).
	Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]J, time.Time, error)
	Renew(ctx context.Context, now time.Time, lease time.Duration, leases []store.Lease) ([]string, error)
	Finish(ctx context.Context, now time.Time, outs []O) ([]error, error)
	Release(ctx context.Context, now time.Time, leases []store.Lease) (int, error)
	// Ready is signalled when a job may be due now, so the pool looks at
	// once instead of at its next poll. It may be nil.
	Ready() <-chan struct{}
}

// Func runs one job and returns its outcome. ctx ends when the pool stops
// for good or the job's lease is lost; the outcome is then dropped.
type Func[J, O any] func(ctx context.Context, job J) O

// Config tunes a Pool. The zero value works.
type Config struct {
	// Name tells the pool's logs apart, such as "events". Default "jobs".
	Name string
	// Workers is the number of jobs run at once, and so the most claimed
	// in one go. Default 64.
	Workers int
	// Lease is how long a claimed job stays claimed without renewal; the
	// pool renews it every Lease/3 while the job runs. Default 30s.
	Lease time.Duration
	// PollInterval is the longest the pool sleeps before looking for due
	// jobs when it was not notified. Default 100ms.
	PollInterval time.Duration
	// ClaimLinger is how long the pool waits after a claim that found fewer
	// due jobs than it had room for, so that the next claim takes the jobs
	// that came meanwhile together: fewer, larger claims. After a claim
	// that left due jobs for want of room (see Queue), it waits a quarter
	// of it. Default 2ms.
	ClaimLinger time.Duration
	// DrainTimeout is how long Run waits for running jobs after its context
	// ends, before it cancels them and gives their leases back. Default 10s.
	DrainTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the pool's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultWorkers is a Config's Workers when it names none.
const DefaultWorkers = 64

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "jobs"
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.ClaimLinger <= 0 {
		c.ClaimLinger = 2 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Pool runs jobs of one queue. Run starts it.
type Pool[J, O any] struct {
	q       Queue[J, O]
	leaseOf func(J) store.Lease
	run     Func[J, O]
	cfg     Config
	log     *slog.Logger

	freed chan struct{} // a worker became free

	mu         sync.Mutex // guards inflight and committing
	inflight   map[store.Lease]*running
	committing int // jobs of inflight whose outcome is being recorded
}

// running is a job in flight: claimed, running, or having its outcome
// recorded.
type running struct {
	cancel    context.CancelFunc
	recording bool // the outcome was handed to the committer
}

// maxCommitting bounds the outcomes waiting to be recorded, as a multiple
// of Workers: past it the pool claims no more until records catch up.
const maxCommitting = 4

// New returns a pool that takes jobs from q, runs them with run, and records
// their outcomes. leaseOf returns a job's lease.
func New[J, O any](q Queue[J, O], leaseOf func(J) store.Lease, run Func[J, O], cfg Config) *Pool[J, O] {
	cfg.setDefaults()
	return &Pool[J, O]{
		q: q, leaseOf: leaseOf, run: run, cfg: cfg,
		log:      cfg.Logger.With("queue", cfg.Name),
		freed:    make(chan struct{}, 1),
		inflight: make(map[store.Lease]*running),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx ends. Then it stops claiming, waits up
// to DrainTimeout for the running jobs to finish and record their outcomes,
// cancels the rest and gives their leases back to the queue.
func (p *Pool[J, O]) Run(ctx context.Context) error {
	finisher := batch.New(p.finish, batch.Config{MaxBatch: 256, Flushers: 2, Timeout: p.cfg.Lease, Linger: time.Millisecond})
	defer finisher.Close()

	// Jobs run under hard, which outlives ctx by the drain.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()

	jobs := make(chan J, p.cfg.Workers)
	var workers, commits sync.WaitGroup
	workers.Add(p.cfg.Workers)
	for range p.cfg.Workers {
		go func() {
			defer workers.Done()
			for j := range jobs {
				p.work(hard, finisher, &commits, j)
				signal(p.freed)
			}
		}()
	}
	var renewer sync.WaitGroup
	renewer.Add(1)
	go func() {
		defer renewer.Done()
		p.renewLoop(hard)
	}()

	p.claimLoop(ctx, jobs)
	close(jobs)

	drained := make(chan struct{})
	go func() { workers.Wait(); commits.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(p.cfg.DrainTimeout):
		p.log.Warn("drain timed out; cancelling running jobs", "running", p.running())
		cancelHard()
		<-drained
	}
	cancelHard()
	renewer.Wait()
	p.releaseAll()
	return nil
}

func (p *Pool[J, O]) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

// free returns how many jobs the pool may claim now: the workers not
// running a job, within the bound on outcomes waiting to be recorded.
func (p *Pool[J, O]) free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return min(p.cfg.Workers-(len(p.inflight)-p.committing), maxCommitting*p.cfg.Workers-len(p.inflight))
}

// claimLoop claims jobs for free workers until ctx ends.
func (p *Pool[J, O]) claimLoop(ctx context.Context, jobs chan<- J) {
	var failures int
	for ctx.Err() == nil {
		free := p.free() // claimed jobs count from track on
		if free <= 0 {
			select {
			case <-p.freed:
			case <-ctx.Done():
			}
			continue
		}
		now := p.cfg.Now()
		claimed, next, err := p.q.Claim(ctx, now, p.cfg.Lease, free)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%50 == 0 {
				p.log.Error("claim failed", "failures", failures, "err", err)
			}
			sleep(ctx, min(p.cfg.PollInterval*time.Duration(failures), 2*time.Second), nil, nil)
			continue
		}
		if failures > 0 {
			p.log.Info("claim recovered", "failures", failures)
			failures = 0
		}
		for _, j := range claimed {
			p.track(j)
			jobs <- j // never blocks: at most free jobs were claimed
		}
		if len(claimed) > 0 && len(claimed) < free {
			linger := p.cfg.ClaimLinger
			if !next.IsZero() {
				// Due jobs were left until running ones make room: come
				// back once a few have, not after a whole linger.
				linger /= 4
			}
			// Else the queue is drained for now: let jobs gather for the
			// next claim rather than claiming them one by one.
			sleep(ctx, linger, nil, nil)
		}
		if len(claimed) == 0 {
			wait := p.cfg.PollInterval
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(now), time.Millisecond))
			}
			// A job ending may make room for due work that waited for it
			// (a destination's local share): look again then too.
			sleep(ctx, wait, p.q.Ready(), p.freed)
		}
	}
}

// sleep waits for d, ctx's end, or a signal on wake or freed (nil
// channels never signal).
func sleep(ctx context.Context, d time.Duration, wake, freed <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-wake:
	case <-freed:
	}
}

// track registers a claimed job as in flight, with a placeholder cancel
// that work replaces.
func (p *Pool[J, O]) track(j J) {
	p.mu.Lock()
	p.inflight[p.leaseOf(j)] = &running{cancel: func() {}}
	p.mu.Unlock()
}

// work runs a job and hands its outcome to a goroutine that records it, so
// the worker is free for the next job while the record waits for its batch.
func (p *Pool[J, O]) work(hard context.Context, finisher *batch.Committer[O, error], commits *sync.WaitGroup, j J) {
	l := p.leaseOf(j)
	ctx, cancel := context.WithCancel(hard)
	p.mu.Lock()
	job := p.inflight[l]
	if job == nil { // a lost lease cancelled it before it started
		p.mu.Unlock()
		cancel()
		return
	}
	job.cancel = cancel
	p.mu.Unlock()

	out := p.run(ctx, j)
	if ctx.Err() != nil {
		// Stopped for good, or the lease was lost: the job is someone
		// else's, or is given back by releaseAll.
		cancel()
		return
	}
	p.mu.Lock()
	p.committing++
	job.recording = true
	p.mu.Unlock()
	commits.Go(func() {
		defer cancel()
		if err := p.commit(hard, finisher, out); err != nil {
			if errors.Is(err, store.ErrLeaseLost) {
				p.log.Warn("lease lost before the outcome was recorded; dropping it", "id", l.ID)
			} else {
				p.log.Error("recording outcome failed; the job will run again when its lease expires", "id", l.ID, "err", err)
			}
		}
		p.mu.Lock()
		delete(p.inflight, l)
		p.committing--
		p.mu.Unlock()
		signal(p.freed)
	})
}

// commit records out, retrying while Redis is unreachable for as long as the
// lease could still be held.
func (p *Pool[J, O]) commit(ctx context.Context, finisher *batch.Committer[O, error], out O) error {
	deadline := time.Now().Add(p.cfg.Lease)
	wait := 50 * time.Millisecond
	for {
		res, err := finisher.Submit(ctx, out)
		if err == nil {
			return res
		}
		if errors.Is(err, batch.ErrClosed) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		sleep(ctx, wait, nil, nil)
		wait = min(2*wait, time.Second)
	}
}

func (p *Pool[J, O]) finish(ctx context.Context, outs []O) ([]error, error) {
	return p.q.Finish(ctx, p.cfg.Now(), outs)
}

// renewLoop renews the leases of running jobs every Lease/3 until ctx
// ends, and cancels the jobs whose lease was lost.
func (p *Pool[J, O]) renewLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		leases := make([]store.Lease, 0, len(p.inflight))
		for l := range p.inflight {
			leases = append(leases, l)
		}
		p.mu.Unlock()
		if len(leases) == 0 {
			continue
		}
		lost, err := p.q.Renew(ctx, p.cfg.Now(), p.cfg.Lease, leases)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("lease renewal failed", "leases", len(leases), "err", err)
			}
			continue
		}
		p.cancelLost(leases, lost)
	}
}

func (p *Pool[J, O]) cancelLost(leases []store.Lease, lost []string) {
	if len(lost) == 0 {
		return
	}
	gone := make(map[string]bool, len(lost))
	for _, id := range lost {
		gone[id] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range leases {
		job, ok := p.inflight[l]
		if !ok || !gone[l.ID] || job.recording {
			// A job whose outcome is being recorded may have just been
			// recorded (its lease dropped with it); if the lease was
			// really lost, the record is refused and says so.
			continue
		}
		p.log.Warn("lease lost while running; cancelling the job", "id", l.ID)
		job.cancel()
		delete(p.inflight, l)
	}
}

// releaseAll gives back the leases of jobs that did not finish.
func (p *Pool[J, O]) releaseAll() {
	p.mu.Lock()
	leases := make([]store.Lease, 0, len(p.inflight))
	for l := range p.inflight {
		leases = append(leases, l)
	}
	clear(p.inflight)
	p.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := p.q.Release(ctx, p.cfg.Now(), leases)
	if err != nil {
		p.log.Error("giving back leases failed; they expire instead", "leases", len(leases), "err", err)
		return
	}
	p.log.Info("gave unfinished jobs back to the queue", "released", n)
}
