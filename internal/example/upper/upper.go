// Package upper is the worked example of a transform step in
// docs/contributing.md: a whole step, with its keys, in one file. An
// "uppercase" step upper-cases a field's value (a receiver that wants
// names in capitals). It is linked only into its test; a real step lives
// in package transforms and adds one line to its list there.
package upper

import (
	"bytes"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/transforms"
)

// Options are the step's keys, as a route's transform writes them: the
// operation key (what it works on) and its options.
type Options struct {
	Uppercase string `mapstructure:"uppercase"` // the field path
	Only      string `mapstructure:"only" enum:"ascii,all"`
}

func init() {
	transforms.RegisterStep(transforms.StepType[Options]{
		Name: "uppercase",
		Compile: func(o *Options, c *transforms.Compiler) transforms.Step {
			if o.Only != "" && o.Only != "ascii" && o.Only != "all" {
				c.Add("only", "%q is not ascii or all", o.Only)
			}
			return &step{path: c.Field("uppercase", o.Uppercase, true), ascii: o.Only != "all"}
		},
	})
}

// step is the Step: Apply changes the parsed message; an error names the
// step and path, never a value.
type step struct {
	path  hl7.Path
	ascii bool
}

func (s *step) String() string { return "uppercase " + s.path.String() }

func (s *step) Apply(m *hl7.Message) error {
	v := m.Value(s.path)
	if len(v) == 0 {
		return nil
	}
	up := bytes.ToUpper(v)
	if s.ascii {
		up = bytes.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}, v)
	}
	return m.Set(s.path, string(up))
}
