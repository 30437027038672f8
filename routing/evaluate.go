package routing

import "github.com/hl7broker/hl7broker/condition"

// Copy is one message a destination receives.
type Copy struct {
	Route       string // the route that sent it; "_unrouted" for unrouted.to
	Destination string
	Data        []byte
}

// DeadLetter is a route whose transform failed on the message.
type DeadLetter struct {
	Route  string
	Reason string // names the route, step and path; never a value
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
	matched := false
	for i := range routes {
		route := &routes[i]
		ok, why, panicked := route.match(in, explain)
		if explain {
			o.Decisions = append(o.Decisions, Decision{Route: route.Name, Matched: ok, Why: why})
		}
		if panicked {
			matched = true // not unrouted: the message goes to the dead-letter queue
			o.DeadLetters = append(o.DeadLetters, DeadLetter{Route: route.Name, Reason: "the condition of route " + route.Name + " panicked (a bug in hl7broker: please report it)"})
			continue
		}
		if !ok {
			continue
		}
		matched = true
		out, err := route.apply(in.Message, data)
		if err != nil {
			o.DeadLetters = append(o.DeadLetters, DeadLetter{Route: route.Name, Reason: "transform of route " + route.Name + " failed: " + err.Error()})
			continue
		}
		for _, dest := range route.To {
			if !o.sends(dest) {
				o.Copies = append(o.Copies, Copy{Route: route.Name, Destination: dest, Data: out})
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

// match is Matches (or Explain), with a panic in a condition recovered.
func (r *Route) match(in condition.Input, explain bool) (ok bool, why string, panicked bool) {
	defer func() {
		if recover() != nil {
			ok, why, panicked = false, "the condition panicked", true
		}
	}()
	if explain {
		ok, why = r.Explain(in)
		return ok, why, false
	}
	return r.Matches(in), "", false
}
