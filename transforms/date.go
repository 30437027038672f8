package transforms

import (
	"errors"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

var errNotADate = errors.New("the value is not a date in the expected format")

// dateStep rewrites a date/time from one format to another.
type dateStep struct {
	path     hl7.Path
	from, to string // Go layouts; "" for HL7 date/time
}

func (s *dateStep) String() string { return "format_date " + s.path.String() }

func (s *dateStep) Apply(m *hl7.Message) error {
	v := string(m.Value(s.path))
	if v == "" {
		return nil
	}
	var t time.Time
	var err error
	if s.from == "" {
		t, err = hl7.ParseTime(v)
	} else {
		t, err = time.Parse(s.from, v)
	}
	if err != nil {
		return errNotADate // the value itself is not said: it may be PHI
	}
	layout := s.to
	if layout == "" {
		layout = "20060102150405"
	}
	out := t.Format(layout)
	if out == v {
		return nil
	}
	return m.Set(s.path, out)
}

// DateOptions are the keys of format_date.
type DateOptions struct {
	FormatDate string `mapstructure:"format_date"`
	FromFormat string `mapstructure:"from_format"` // default: HL7 date/time (YYYYMMDDHHMMSS, any precision)
	ToFormat   string `mapstructure:"to_format"`   // yyyy, MM, dd, HH, mm, ss; "hl7" for HL7 date/time
}

var dateType = StepType[DateOptions]{Name: "format_date", Compile: func(s *DateOptions, c *Compiler) Step { return c.compileDate(s) }}

func (c *Compiler) compileDate(s *DateOptions) Step {
	st := &dateStep{path: c.field("format_date", s.FormatDate, true)}
	if s.ToFormat == "" {
		c.add("to_format", "format_date needs a to_format such as yyyy-MM-dd, or hl7")
	}
	conv := func(key, f string) string {
		if f == "" || strings.EqualFold(f, "hl7") {
			return ""
		}
		if !strings.ContainsAny(f, "yMdHms") {
			c.add(key, "%q has none of yyyy, MM, dd, HH, mm, ss", f)
		}
		return hl7.Layout(f)
	}
	st.from, st.to = conv("from_format", s.FromFormat), conv("to_format", s.ToFormat)
	return st
}
