package transforms

import (
	"bytes"
	"strings"
	"unicode"

	"github.com/hl7broker/hl7broker/hl7"
)

// caseStep puts names into one case: every value the path covers (each
// occurrence of the segment unless the path names one, each repetition
// unless it names one), component by component, so that escape sequences
// and separators are left as they are.
type caseStep struct {
	path hl7.Path
	to   string // upper, lower, title
}

func (s *caseStep) String() string { return "name_case " + s.path.String() }

func (s *caseStep) Apply(m *hl7.Message) error {
	var at []hl7.Path
	for q := range m.Values(s.path) {
		at = append(at, pieces(m, q)...)
	}
	for _, q := range at {
		v := string(m.Value(q))
		out := s.convert(v)
		if out != v {
			if err := m.Set(q, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *caseStep) convert(v string) string {
	switch s.to {
	case "upper":
		return strings.ToUpper(v)
	case "lower":
		return strings.ToLower(v)
	}
	return titleCase(v)
}

// titleCase capitalises each word's first letter and lowers the rest; a
// word starts after a space, a hyphen, an apostrophe or a period:
// "o'BRIEN-smith" is "O'Brien-Smith". Mc and Mac names are left to a map
// step: no rule fits every family.
func titleCase(v string) string {
	var b strings.Builder
	start := true
	for _, r := range v {
		if start {
			b.WriteRune(unicode.ToTitle(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		start = r == ' ' || r == '-' || r == '\'' || r == '.' || r == '’'
	}
	return b.String()
}

// pieces are the smallest parts of the value at q (a repetition, a
// component or a subcomponent, as q names): each component of a field
// repetition, each subcomponent of a component that has them.
func pieces(m *hl7.Message, q hl7.Path) []hl7.Path {
	raw, ok := m.Raw(q)
	if !ok {
		return nil
	}
	d := m.Delimiters()
	if q.Component == 0 {
		var out []hl7.Path
		for c := range bytes.Count(raw, []byte{d.Component}) + 1 {
			qc := q
			qc.Component = c + 1
			out = append(out, pieces(m, qc)...)
		}
		return out
	}
	if q.Subcomponent == 0 && bytes.IndexByte(raw, d.Subcomponent) >= 0 {
		var out []hl7.Path
		for sc := range bytes.Count(raw, []byte{d.Subcomponent}) + 1 {
			qs := q
			qs.Subcomponent = sc + 1
			out = append(out, qs)
		}
		return out
	}
	return []hl7.Path{q}
}

// CaseOptions are the keys of name_case.
type CaseOptions struct {
	NameCase string `mapstructure:"name_case"`
	To       string `mapstructure:"to"` // upper, lower or title
}

var caseType = StepType[CaseOptions]{Name: "name_case", Compile: func(s *CaseOptions, c *Compiler) Step {
	st := &caseStep{path: c.field("name_case", s.NameCase, true), to: s.To}
	switch s.To {
	case "upper", "lower", "title":
	default:
		c.add("to", "name_case needs to: upper, lower or title (not %q)", s.To)
	}
	return st
}}
