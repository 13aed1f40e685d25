package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// bodies builds the event bodies of one run. Each event has a unique id
// (the run's random prefix and a sequence number) and a payload that holds
// the same number, so no two bodies are equal and server-side idempotency
// never collapses them.
type bodies struct {
	idPrefix string // "lg-<random>-"
	head     string // `,"event_type":...,"timestamp":"`
	pad      string // payload padding, to reach PayloadBytes
	tail     string // metadata and callback, then "}"
}

// payloadOverhead is about len(`{"seq":123456,"pad":""}`).
const payloadOverhead = 24

func newBodies(eventType string, payloadBytes int, callbackURL string) *bodies {
	var r [6]byte
	rand.Read(r[:]) // never fails (crypto/rand)
	run := hex.EncodeToString(r[:])
	et, _ := json.Marshal(eventType) // a string always marshals
	tail := `,"metadata":{"source":"loadgen","run":"` + run + `"}`
	if callbackURL != "" {
		u, _ := json.Marshal(callbackURL)
		tail += `,"callback":{"success_url":` + string(u) + `,"fail_url":` + string(u) + `}`
	}
	return &bodies{
		idPrefix: "lg-" + run + "-",
		head:     `","event_type":` + string(et) + `,"timestamp":"`,
		pad:      strings.Repeat("x", max(payloadBytes-payloadOverhead, 0)),
		tail:     tail + "}",
	}
}

// id returns the event id of sequence number seq.
func (b *bodies) id(seq uint64) string {
	return b.idPrefix + strconv.FormatUint(seq, 10)
}

// build returns the JSON body of event seq, sent at now.
func (b *bodies) build(seq uint64, now time.Time) []byte {
	buf := make([]byte, 0, 64+len(b.idPrefix)+len(b.head)+len(b.pad)+len(b.tail)+len(time.RFC3339Nano)+40)
	buf = append(buf, `{"id":"`...)
	buf = append(buf, b.idPrefix...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, b.head...)
	buf = now.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","payload":{"seq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `,"pad":"`...)
	buf = append(buf, b.pad...)
	buf = append(buf, `"}`...)
	buf = append(buf, b.tail...)
	return buf
}
