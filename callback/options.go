package callback

import (
	"cmp"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
)

// Options say how a callback is sent: its HTTP method and, for a POST, the
// format of its body. A zero field does not say, and leaves the choice to
// a less specific level.
//
// There are three levels, the most specific first: the event's own
// callback.method and callback.format (kept in its callback record), the
// route of its event type (Config.RouteOptions), and the Dispatcher's
// Config.Method and Config.Format (default POST and json). The Dispatcher
// resolves them at each delivery, so a redelivery follows the
// configuration of the moment, and library mode (whose events are
// recorded without the engine's routes) gets its routes' options all the
// same.
type Options struct {
	Method event.CallbackMethod
	Format event.CallbackFormat
}

// Check reports what is wrong with o, as event.CheckCallback does: a
// method other than GET or POST, a format other than json or cloudevents,
// or GET with cloudevents.
func (o Options) Check() error { return event.CheckCallback(o.Method, o.Format) }

// options returns how cb is sent, from its event's, its route's and the
// Dispatcher's options.
func (d *Dispatcher) options(cb *store.Callback) Options {
	var route Options
	if d.cfg.RouteOptions != nil {
		route = d.cfg.RouteOptions(cb.EventType)
	}
	return resolve(Options{Method: cb.Method, Format: cb.Format}, route, Options{Method: d.cfg.Method, Format: d.cfg.Format})
}

// resolve returns the method and the format each of the first of levels,
// the most specific first, that names it (POST and json when none does).
// Each level is valid on its own (Check), but two may combine into GET
// with cloudevents: then the one named at the more specific level wins. A
// format that wins turns the method into POST, since only a POST carries
// it; a GET that wins sends no body, and the format is moot (json).
func resolve(levels ...Options) Options {
	var out Options
	methodAt, formatAt := len(levels), len(levels)
	for i, l := range levels {
		if out.Method == "" && l.Method != "" {
			out.Method, methodAt = l.Method, i
		}
		if out.Format == "" && l.Format != "" {
			out.Format, formatAt = l.Format, i
		}
	}
	out.Method, out.Format = cmp.Or(out.Method, event.CallbackPOST), cmp.Or(out.Format, event.CallbackJSON)
	if out.Method == event.CallbackGET && out.Format == event.CallbackCloudEvents {
		if formatAt < methodAt {
			out.Method = event.CallbackPOST
		} else {
			out.Format = event.CallbackJSON
		}
	}
	return out
}
