package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/gin-gonic/gin"
)

// The engine's API is Gin's: quiet, so that examples print only their own
// output. Only the tests import it, never the client.
func init() { gin.SetMode(gin.ReleaseMode) }

// secret signs the callbacks of the test servers: "whsec_" and the base64
// of 32 fixed bytes.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// otherSecret is a valid secret that signs nothing here (the base64 of
// "secret that signs nothing").
const otherSecret = "whsec_c2VjcmV0IHRoYXQgc2lnbnMgbm90aGluZw=="

// testConfig is the configuration of the test servers: the embedded Redis,
// no logs, callbacks to loopback allowed and signed with secret, workers
// that look for work often.
func testConfig() boomerang.Config {
	return boomerang.Config{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 10 * time.Millisecond,
		Callback: boomerang.CallbackConfig{
			AllowPrivateNetworks: true,
			SigningSecrets:       []string{secret},
		},
	}
}

// routes registers the event types of the test servers: "ok" succeeds,
// "fail" fails for good, "slow" succeeds after 300ms.
func routes(eng *boomerang.Engine) error {
	type payload struct {
		Name string `json:"name"`
	}
	return errors.Join(
		boomerang.Handle(eng, "ok", func(ctx context.Context, msg event.EventMessage[payload]) error { return nil }),
		boomerang.Handle(eng, "fail", func(ctx context.Context, msg event.EventMessage[payload]) error {
			return boomerang.Permanent(errors.New("no such user"))
		}),
		boomerang.Handle(eng, "slow", func(ctx context.Context, msg event.EventMessage[payload]) error {
			select {
			case <-time.After(300 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
	)
}

// startBoomerang runs an engine of cfg with the event types register
// adds, and serves its API on an httptest server. stop shuts both down and
// returns Run's error.
func startBoomerang(cfg boomerang.Config, register func(*boomerang.Engine) error) (srv *httptest.Server, stop func() error, err error) {
	eng, err := boomerang.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := register(eng); err != nil {
		eng.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	srv = httptest.NewServer(eng.Handler())
	var once sync.Once
	stop = func() error {
		once.Do(func() {
			srv.Close()
			cancel()
			select {
			case err = <-ran:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s")
			}
			err = errors.Join(err, eng.Close())
		})
		return err
	}
	return srv, stop, nil
}

// serve starts a test server of cfg with routes, stopped at the test's
// end.
func serve(t *testing.T, cfg boomerang.Config) *httptest.Server {
	t.Helper()
	srv, stop, err := startBoomerang(cfg, routes)
	if err != nil {
		t.Fatalf("start boomerang: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop boomerang: %v", err)
		}
	})
	return srv
}

// front is an httptest server before next: each request is first offered
// to intercept, which answers it itself (true) or lets it through to next.
// It records the body and arrival time of every request.
type front struct {
	mu     sync.Mutex // guards bodies and at
	bodies [][]byte
	at     []time.Time
}

func newFront(t *testing.T, next http.Handler, intercept func(n int, w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *front) {
	t.Helper()
	f := &front{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.at = append(f.at, time.Now())
		n := len(f.bodies)
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if intercept(n, w, r) {
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, f
}

// times returns the arrival times of the requests so far.
func (f *front) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

// requests returns the bodies of the requests so far.
func (f *front) requests() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.bodies...)
}
