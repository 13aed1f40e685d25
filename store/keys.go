package store

// keys names every Redis key of one store. All keys share the hash tag
// {prefix}, so the multi-key commands and scripts work on Redis Cluster too
// (the store's keys then live in one slot).
//
//	{p}:ev:<id>            string  the event body as accepted (JSON), immutable
//	{p}:st:<id>            string  the event's Record (JSON)
//	{p}:cb:<id>            string  the event's Callback record (JSON)
//	{p}:events             zset    id -> when a worker should look at it next (unix ms):
//	                               queued/retrying: due time; processing: lease deadline
//	{p}:inline             zset    id -> lease deadline of events run in-request by
//	                               handler.NewGinEventHandler (library mode)
//	{p}:events:lease       hash    id -> fencing token of the lease held on the event
//	{p}:events:attempts    hash    id -> attempts started (counted at claim)
//	{p}:callbacks          zset    id -> when its callback is due (or its lease deadline)
//	{p}:callbacks:lease    hash    id -> fencing token of the delivery lease
//	{p}:callbacks:attempts hash    id -> deliveries started
//	{p}:recent             zset    id -> accepted at (unix ms), for listing newest first
//	                               and for retention
//	{p}:dead               zset    id -> when its event or callback failed for good (unix ms)
//	{p}:token              string  counter that issues fencing tokens
//	{p}:callbacks:dest     hash    id -> destination of its callback (scheme://host:port)
//	{p}:events:dest        hash    id -> destination of the forward route of an event in flight
//	{p}:events:waiting     hash    id -> why the due event waits for its destination: "reason|until"
//	{p}:callbacks:waiting  hash    id -> why its due delivery waits: "reason|until (unix ms)"
//	{p}:dests              zset    destination -> last time a delivery to it was claimed or deferred
//	{p}:dest:<d>           hash    flow state of destination d: open_until, failures,
//	                               win_start, win_total, win_failed, tokens, tokens_at, paused_until
//	{p}:dest:<d>:inflight  zset    id -> lease deadline of each delivery to d in flight
type keys struct {
	tag string // "{prefix}"

	events, inline, eventLease, eventAttempts  string
	callbacks, callbackLease, callbackAttempts string
	recent, dead, token                        string
	callbackDest, callbackWaiting, dests       string
	eventDest, eventWaiting                    string
}

// Infixes of the per-event keys; the scripts build those keys as tag+infix+id.
const (
	infixBody     = ":ev:"
	infixRecord   = ":st:"
	infixCallback = ":cb:"
	infixDest     = ":dest:" // then the destination; its in-flight zset adds ":inflight"
)

func newKeys(prefix string) keys {
	tag := "{" + prefix + "}"
	return keys{
		tag:              tag,
		events:           tag + ":events",
		inline:           tag + ":inline",
		eventLease:       tag + ":events:lease",
		eventAttempts:    tag + ":events:attempts",
		callbacks:        tag + ":callbacks",
		callbackLease:    tag + ":callbacks:lease",
		callbackAttempts: tag + ":callbacks:attempts",
		recent:           tag + ":recent",
		dead:             tag + ":dead",
		token:            tag + ":token",
		callbackDest:     tag + ":callbacks:dest",
		callbackWaiting:  tag + ":callbacks:waiting",
		dests:            tag + ":dests",
		eventDest:        tag + ":events:dest",
		eventWaiting:     tag + ":events:waiting",
	}
}

func (k keys) body(id string) string     { return k.tag + infixBody + id }
func (k keys) record(id string) string   { return k.tag + infixRecord + id }
func (k keys) callback(id string) string { return k.tag + infixCallback + id }
func (k keys) dest(d string) string      { return k.tag + infixDest + d }

// queue describes one leased work queue: a zset of due times, the hash of
// leases held on its members and the hash of attempts started. Its name
// (QueueEvents, ...) is what an Observer is told.
type queue struct {
	name                 string
	due, lease, attempts string
}

func (k keys) eventQueue() queue {
	return queue{name: QueueEvents, due: k.events, lease: k.eventLease, attempts: k.eventAttempts}
}

func (k keys) inlineQueue() queue {
	return queue{name: QueueInline, due: k.inline, lease: k.eventLease, attempts: k.eventAttempts}
}

func (k keys) callbackQueue() queue {
	return queue{name: QueueCallbacks, due: k.callbacks, lease: k.callbackLease, attempts: k.callbackAttempts}
}
