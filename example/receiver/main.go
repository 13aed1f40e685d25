// Command receiver is a callback receiver that verifies Boomerang's Standard
// Webhooks signatures and drops redeliveries it has already handled, by
// webhook-id. Run it next to a server whose callback.signing_secrets holds
// the same secret:
//
//	WEBHOOK_SECRET=whsec_... go run ./example/receiver      # listens on 127.0.0.1:9090
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// outcome is the body of a callback.
type outcome struct {
	EventID     string    `json:"event_id"`
	EventType   string    `json:"event_type"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error"`
	CompletedAt time.Time `json:"completed_at"`
}

func main() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("WEBHOOK_SECRET"))
	if err != nil || os.Getenv("WEBHOOK_SECRET") == "" {
		log.Fatal("set WEBHOOK_SECRET to the whsec_... secret of the server's callback.signing_secrets")
	}
	var mu sync.Mutex
	seen := make(map[string]bool) // webhook-ids handled; a real receiver keeps these in its database

	http.HandleFunc("POST /callback", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		// Verify checks the signature against the body and headers, and
		// that webhook-timestamp is within 5 minutes (replay protection).
		if err := wh.Verify(body, r.Header); err != nil {
			log.Printf("refused a callback: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		dup := seen[id]
		seen[id] = true
		mu.Unlock()
		if dup {
			w.WriteHeader(http.StatusOK) // already handled: acknowledge, do nothing
			return
		}
		var o outcome
		if err := json.Unmarshal(body, &o); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		log.Printf("event %s (%s) %s after %d attempts %s", o.EventID, o.EventType, o.Status, o.Attempts, o.Error)
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: "127.0.0.1:9090", ReadHeaderTimeout: 5 * time.Second}
	log.Printf("listening on http://%s/callback", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
