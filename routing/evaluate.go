package routing

import (
	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/script"
	"github.com/hl7broker/hl7broker/transforms"
)

// Copy is one message a destination receives.
type Copy struct {
	Route       string // the route that sent it; "_unrouted" for unrouted.to
	Destination string
	Data        []byte
	// Vars are the variables the route's scripts set, which the
	// destination's encoder and templates see.
	Vars map[string]string
}

// DeadLetter is a route whose transform failed on the message.
type DeadLetter struct {
	Route  string
	Reason string // names the route, step and path; never a value
	Err    error  // what failed, for tools such as route test (a *script.Error's Detail)
}

// Decision is one route's verdict on a message, with the condition that
// decided (only when explaining).
type Decision struct {
	Route   string
	Matched bool
	Why     string
}

// Plan is everything routing does with one message. The router stores
// it; route test prints it.
type Plan struct {
	Decisions   []Decision // with explain only
	Copies      []Copy     // in route order; one per destination, from the first route that names it
	DeadLetters []DeadLetter
	Unrouted    bool // no route matched (Copies then holds unrouted.to's, if set)
	// Log is what scripts logged (with explain only: route test).
	Log []script.LogLine
}

// Evaluate matches in against every route in order, applies the
// transforms of those that match, and returns the copies and dead
// letters. data is the message as stored; in.Message is data parsed.
// With explain, each route's Decision says why; without, nothing is
// formatted, for the router's hot path.
func Evaluate(routes []Route, unroutedTo string, in condition.Input, data []byte, explain bool) Plan {
	var o Plan
	if in.Header == nil {
		in.Header = new(condition.Header) // every route reads MSH-9 and the like once
	}
	if explain {
		in.Log = &o.Log
	}
	matched := false
	for i := range routes {
		route := &routes[i]
		ok, why, failed, failure := route.match(in, explain)
		if explain {
			o.Decisions = append(o.Decisions, Decision{Route: route.Name, Matched: ok, Why: why})
		}
		if failed != "" {
			matched = true // not unrouted: the message goes to the dead-letter queue
			o.DeadLetters = append(o.DeadLetters, DeadLetter{Route: route.Name, Reason: "the condition of route " + route.Name + " " + failed, Err: failure})
			continue
		}
		if !ok {
			continue
		}
		matched = true
		st := transforms.State{Listener: in.Listener, Log: in.Log}
		out, err := route.apply(in.Message, data, &st)
		if err != nil {
			o.DeadLetters = append(o.DeadLetters, DeadLetter{Route: route.Name, Reason: "transform of route " + route.Name + " failed: " + err.Error(), Err: err})
			continue
		}
		for _, dest := range route.To {
			if !o.sends(dest) {
				o.Copies = append(o.Copies, Copy{Route: route.Name, Destination: dest, Data: out, Vars: st.Vars})
			}
		}
	}
	if !matched {
		o.Unrouted = true
		if unroutedTo != "" {
			o.Copies = append(o.Copies, Copy{Route: "_unrouted", Destination: unroutedTo, Data: data})
		}
	}
	return o
}

func (o *Plan) sends(dest string) bool {
	for _, c := range o.Copies {
		if c.Destination == dest {
			return true
		}
	}
	return false
}

// match is Matches (or Explain), with a condition that could not decide
// (a script that failed) or panicked recovered: failed says how.
func (r *Route) match(in condition.Input, explain bool) (ok bool, why string, failed string, err error) {
	defer func() {
		if p := recover(); p != nil {
			if f, isFailure := p.(*condition.Failure); isFailure {
				ok, why, failed, err = false, "the condition failed: "+f.Error(), "failed: "+f.Error(), f
				return
			}
			ok, why, failed = false, "the condition panicked", "panicked (a bug in hl7broker: please report it)"
		}
	}()
	if explain {
		ok, why = r.Explain(in)
		return ok, why, "", nil
	}
	return r.Matches(in), "", "", nil
}
