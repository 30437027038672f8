package transforms

import (
	"errors"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

var errNotAPhone = errors.New("the value's digits do not fit the phone pattern")

// phoneStep rewrites phone numbers into one pattern: the value's digits
// (and nothing else: parentheses, dots, spaces and dashes go) fill the
// pattern's # in order. A number with a country code (country) before the
// digits the pattern wants loses it; an extension after an x is kept.
// Every value the path covers is rewritten.
type phoneStep struct {
	path     hl7.Path
	pattern  string
	digits   int // the # in pattern
	country  string
	mismatch string // keep, clear or fail
}

func (s *phoneStep) String() string { return "format_phone " + s.path.String() }

func (s *phoneStep) Apply(m *hl7.Message) error {
	var at []hl7.Path
	for q := range m.Values(s.path) {
		at = append(at, q)
	}
	for _, q := range at {
		v := string(m.Value(q))
		if v == "" {
			continue
		}
		out, ok := s.format(v)
		switch {
		case ok && out == v:
		case ok:
			if err := m.Set(q, out); err != nil {
				return err
			}
		case s.mismatch == "clear":
			if err := m.Set(q, ""); err != nil {
				return err
			}
		case s.mismatch == "fail":
			return errNotAPhone // the value itself is not said: it is PHI
		}
	}
	return nil
}

// format is v in the pattern, and whether its digits fit.
func (s *phoneStep) format(v string) (string, bool) {
	number, ext := v, ""
	if i := strings.IndexAny(strings.ToLower(v), "x"); i >= 0 {
		number, ext = v[:i], strings.TrimSpace(v[i+1:])
		ext = strings.TrimPrefix(strings.TrimPrefix(ext, "t"), ".") // "ext", "ext."
		ext = strings.TrimSpace(ext)
	}
	var d []byte
	for i := 0; i < len(number); i++ {
		if c := number[i]; c >= '0' && c <= '9' {
			d = append(d, c)
		}
	}
	if len(d) == s.digits+len(s.country) && s.country != "" && strings.HasPrefix(string(d), s.country) {
		d = d[len(s.country):]
	}
	if len(d) != s.digits {
		return "", false
	}
	var b strings.Builder
	k := 0
	for i := 0; i < len(s.pattern); i++ {
		if s.pattern[i] == '#' {
			b.WriteByte(d[k])
			k++
		} else {
			b.WriteByte(s.pattern[i])
		}
	}
	if ext != "" {
		b.WriteString("X" + ext)
	}
	return b.String(), true
}

// PhoneOptions are the keys of format_phone.
type PhoneOptions struct {
	FormatPhone string `mapstructure:"format_phone"`
	Pattern     string `mapstructure:"pattern"`     // # for each digit; default HL7's US form (###)###-####
	Country     string `mapstructure:"country"`     // a country code to drop before the digits (1 for North America)
	OnMismatch  string `mapstructure:"on_mismatch"` // keep (default), clear or fail
}

var phoneType = StepType[PhoneOptions]{Name: "format_phone", Compile: func(s *PhoneOptions, c *Compiler) Step {
	st := &phoneStep{path: c.field("format_phone", s.FormatPhone, true), pattern: s.Pattern, country: s.Country, mismatch: s.OnMismatch}
	if st.pattern == "" {
		st.pattern = "(###)###-####"
	}
	st.digits = strings.Count(st.pattern, "#")
	if st.digits == 0 {
		c.add("pattern", "format_phone's pattern needs a # for each digit, such as (###)###-####")
	}
	if strings.Trim(st.country, "0123456789") != "" {
		c.add("country", "format_phone's country is digits, such as 1 (not %q)", st.country)
	}
	switch st.mismatch {
	case "":
		st.mismatch = "keep"
	case "keep", "clear", "fail":
	default:
		c.add("on_mismatch", "format_phone's on_mismatch is keep, clear or fail (not %q)", st.mismatch)
	}
	return st
}}
