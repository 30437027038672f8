package routing

import (
	"slices"

	"github.com/hl7broker/hl7broker/hl7"
)

// Route sends the messages it matches to its destinations. Empty From,
// Types or Events match anything.
type Route struct {
	Name      string
	From      []string // listener names
	Types     []string // MSH-9.1
	Events    []string // MSH-9.2
	Transform []SetStep
	To        []string // destination names
}

// SetStep sets the field at Path to Value (escaped as needed).
type SetStep struct {
	Path  hl7.Path
	Value string
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
func (r *Route) apply(data []byte) ([]byte, error) {
	if len(r.Transform) == 0 {
		return data, nil
	}
	m, err := hl7.Parse(data)
	if err != nil {
		return nil, err
	}
	for _, s := range r.Transform {
		if err := m.Set(s.Path, s.Value); err != nil {
			return nil, err
		}
	}
	return m.Bytes(), nil
}
