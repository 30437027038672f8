package routing

import (
	"fmt"
	"slices"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/transforms"
)

// Route sends the messages it matches to its destinations. An empty From
// and a zero When match anything.
type Route struct {
	Name      string
	From      []string // listener names
	When      condition.Condition
	Transform transforms.Pipeline
	To        []string // destination names
}

// Matches reports whether the route takes in.
func (r *Route) Matches(in condition.Input) bool {
	return (len(r.From) == 0 || slices.Contains(r.From, in.Listener)) && r.When.Match(in)
}

// Explain is Matches with the reason, for tools such as route test.
func (r *Route) Explain(in condition.Input) (bool, string) {
	if len(r.From) > 0 && !slices.Contains(r.From, in.Listener) {
		return false, fmt.Sprintf("listener %q is not one of from %v", in.Listener, r.From)
	}
	return r.When.Explain(in)
}

// apply returns the message after the route's transforms: the original
// bytes, untouched, when there are none. m is data parsed; it is not
// changed. st gathers the variables the steps set.
func (r *Route) apply(m *hl7.Message, data []byte, st *transforms.State) ([]byte, error) {
	return r.Transform.ApplyParsed(m, data, st)
}
