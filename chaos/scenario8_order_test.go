//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOrderingKill9 sends events with ordering keys, each key's events one
// after the other (the next once the previous was accepted), while
// instances are killed with SIGKILL and restarted. Some first attempts
// fail, so retries must hold their key. Per key, the forward target must
// see the events in acceptance order: an event may be run again after a
// kill (its lease expires, at-least-once), but never after a later event
// of its key started. Nothing accepted may be lost.
func TestOrderingKill9(t *testing.T) {
	res := report(t, "ordering keys under kill -9")
	h := newHarness(t, options{instances: 2, start: 2})

	// The target records, per key, the sequence numbers in the order
	// their attempts arrive. Ids are o<key>-<seq>.
	var mu sync.Mutex
	arrivals := map[string][]int{}
	h.target.setAnswer(func(id string, attempt int, w http.ResponseWriter, r *http.Request) {
		key, seqText, ok := strings.Cut(strings.TrimPrefix(id, "o"), "-")
		seq, err := strconv.Atoi(seqText)
		if !ok || err != nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		mu.Lock()
		arrivals[key] = append(arrivals[key], seq)
		mu.Unlock()
		if attempt == 1 && seq%7 == 3 { // a retry must hold the key
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		select {
		case <-time.After(time.Duration(5+rand.IntN(20)) * time.Millisecond):
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	})
	l := newLoader(t, h, "order")
	const keys = 24
	ctx, cancel := context.WithTimeout(context.Background(), prof.load)
	defer cancel()
	var sent sync.WaitGroup
	posted := make([]int, keys)
	for k := range keys {
		sent.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				id := fmt.Sprintf("o%d-%d", k, seq)
				body, _ := json.Marshal(map[string]any{
					"id": id, "event_type": "chaos.order", "ordering_key": fmt.Sprintf("key-%d", k),
					"payload":  map[string]any{"key": k, "seq": seq},
					"callback": map[string]string{"success_url": h.recv.base + "/ok", "fail_url": h.recv.base + "/ok"},
				})
				l.submit(id, body) // until accepted: the next is sent after
				posted[k] = seq + 1
			}
		})
	}

	kills := 0
	if err := h.killRestart(t, time.Now(), func(*instance, time.Time) { kills++ }); err != nil {
		t.Error(err)
	}
	sent.Wait()
	_, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events although an instance was always up", gaveUp)
	}
	ids := l.acceptedIDs()
	a := h.audit(t, expectAll(ids, wantDelivered), prof.drain)

	// Order per key: the sequence of arrivals never goes back, and every
	// accepted event arrived.
	mu.Lock()
	defer mu.Unlock()
	accepted := map[string]bool{}
	for _, id := range ids {
		accepted[id] = true
	}
	reruns, total := 0, 0
	for k := range keys {
		key := strconv.Itoa(k)
		seqs := arrivals[key]
		total += len(seqs)
		seen := map[int]bool{}
		for i, s := range seqs {
			if i > 0 && s < seqs[i-1] {
				t.Errorf("key %d: event %d arrived after event %d had started (arrivals %v)", k, s, seqs[i-1], seqs[max(0, i-5):min(len(seqs), i+5)])
				break
			}
			if seen[s] {
				reruns++
			}
			seen[s] = true
		}
		for seq := range posted[k] {
			if id := fmt.Sprintf("o%d-%d", k, seq); accepted[id] && !seen[seq] {
				t.Errorf("key %d: accepted event %s never reached the target", k, id)
			}
		}
	}
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.notes = fmt.Sprintf("%d keys, %d kills; %d attempts at the target (%d runs again of an event, retries and kills); order kept per key; %d bad answers; settled in %s",
		keys, kills, total, reruns, bad, a.settled.Round(100*time.Millisecond))
	t.Logf("ordering: %s", res.notes)
}
