package routing

import (
	"slices"

	"github.com/hl7broker/hl7broker/transforms"
)

// Route sends the messages it matches to its destinations. Empty From,
// Types or Events match anything.
type Route struct {
	Name      string
	From      []string // listener names
	Types     []string // MSH-9.1
	Events    []string // MSH-9.2
	Transform transforms.Pipeline
	To        []string // destination names
}

// matches reports whether the route takes a message from listener with
// the given type and event.
func (r *Route) matches(listener, typ, event string) bool {
	return (len(r.From) == 0 || slices.Contains(r.From, listener)) &&
		(len(r.Types) == 0 || slices.Contains(r.Types, typ)) &&
		(len(r.Events) == 0 || slices.Contains(r.Events, event))
}

// apply returns the message after the route's transforms: the original
// bytes, untouched, when there are none.
func (r *Route) apply(data []byte) ([]byte, error) { return r.Transform.Apply(data) }
