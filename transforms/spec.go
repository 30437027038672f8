package transforms

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
)

// Spec is the YAML form of one step: exactly one operation key (set, copy,
// move, clear, delete, map, replace, remove_segments, add_segment,
// truncate, format_date) naming what it works on, plus that operation's
// options. docs/routing.md describes each with an example.
type Spec struct {
	Set      string  `mapstructure:"set"`
	Value    *string `mapstructure:"value"`    // set: a literal, escaped as needed
	Template *string `mapstructure:"template"` // set, add_segment: ER7 text with {{PATH}} placeholders

	Copy string `mapstructure:"copy"`
	Move string `mapstructure:"move"`
	To   string `mapstructure:"to"` // copy, move: the destination path

	Clear  string `mapstructure:"clear"`
	Delete string `mapstructure:"delete"`

	Map     string            `mapstructure:"map"`
	Table   map[string]string `mapstructure:"table"`                              // inline lookup table
	CSV     string            `mapstructure:"csv"`                                // or a two-column CSV file: from,to
	OnMiss  string            `mapstructure:"on_miss" enum:"keep,default,reject"` // keep (default) | default | reject
	Default string            `mapstructure:"default"`

	Replace string  `mapstructure:"replace"`
	Pattern string  `mapstructure:"pattern"` // a regular expression (Go RE2 syntax)
	With    *string `mapstructure:"with"`    // the replacement; $1 names a group

	RemoveSegments []string        `mapstructure:"remove_segments"` // names; Z* means every Z-segment
	Where          *condition.When `mapstructure:"where"`           // remove_segments: only segments for which this holds
	AddSegment     string          `mapstructure:"add_segment"`     // a literal segment such as ZPI|1|x
	After          string          `mapstructure:"after"`           // add_segment: after the last segment of this name

	Truncate string `mapstructure:"truncate"`
	Length   int    `mapstructure:"length"` // characters kept

	Redact *RedactSpec `mapstructure:"redact"` // de-identify: see RedactSpec

	FormatDate string `mapstructure:"format_date"`
	FromFormat string `mapstructure:"from_format"` // default: HL7 date/time (YYYYMMDDHHMMSS, any precision)
	ToFormat   string `mapstructure:"to_format"`   // yyyy, MM, dd, HH, mm, ss; "hl7" for HL7 date/time
}

// Problem is one thing wrong with a step, at a key relative to the step
// ("set", "pattern").
type Problem struct {
	Key     string
	Message string
}

// Options are what compiling needs from outside.
type Options struct {
	// ReadFile reads a file a step names (a map's csv), relative to the
	// config file; nil: such steps are a problem.
	ReadFile func(name string) ([]byte, error)
	// Dir is the config file's folder: a ${file:PATH} secret reference
	// (redact's key) is relative to it.
	Dir string
}

// Compile turns specs into a Pipeline, or returns every problem of every
// step, keyed "[i].key".
func Compile(specs []Spec, opt Options) (Pipeline, []Problem) {
	var p Pipeline
	var problems []Problem
	for i, s := range specs {
		step, probs := compileOne(s, opt)
		for _, pr := range probs {
			problems = append(problems, Problem{Key: fmt.Sprintf("[%d].%s", i, pr.Key), Message: pr.Message})
		}
		if len(probs) == 0 {
			p = append(p, step)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return p, nil
}

// compiler collects the problems of one step.
type compiler struct{ problems []Problem }

func (c *compiler) add(key, format string, args ...any) {
	c.problems = append(c.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// field parses a path that must name a field (or part of one) that can be
// written or read.
func (c *compiler) field(key, s string, writable bool) hl7.Path {
	p, err := hl7.ParsePath(s)
	if err != nil {
		var pe *hl7.PathError
		reason := err.Error()
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		c.add(key, "%q is not a field path such as PID-3.1: %s", s, reason)
		return p
	}
	if p.Field == 0 {
		c.add(key, "%q names a segment, not a field", s)
	} else if writable && (p.Segment == "MSH" || p.Segment == "BHS" || p.Segment == "FHS") && p.Field <= 2 {
		c.add(key, "%q is the delimiters and cannot be changed", s)
	}
	return p
}

func compileOne(s Spec, opt Options) (Step, []Problem) {
	var c compiler
	ops := s.ops()
	if len(ops) != 1 {
		if len(ops) == 0 {
			c.add("", "a step needs one operation: set, copy, move, clear, delete, map, replace, remove_segments, add_segment, truncate, format_date or redact")
		} else {
			c.add("", "a step has one operation, not %s", strings.Join(ops, " and "))
		}
		return nil, c.problems
	}
	var step Step
	switch ops[0] {
	case "set":
		step = c.compileSet(s)
	case "copy", "move":
		from := s.Copy
		if ops[0] == "move" {
			from = s.Move
		}
		if s.To == "" {
			c.add("to", "%s needs a destination path in to", ops[0])
		}
		step = &copyStep{from: c.field(ops[0], from, false), to: c.field("to", s.To, true), move: ops[0] == "move"}
	case "clear":
		step = &clearStep{path: c.field("clear", s.Clear, true)}
	case "delete":
		p, err := hl7.ParsePath(s.Delete)
		if err != nil {
			c.add("delete", "%q is not a path such as PID-13 or OBX[2]", s.Delete)
		} else if p.Segment == "MSH" && (p.Field == 0 || p.Field <= 2) {
			c.add("delete", "%q cannot be deleted", s.Delete)
		}
		step = &deleteStep{path: p}
	case "map":
		step = c.compileMap(s, opt)
	case "replace":
		step = c.compileReplace(s)
	case "remove_segments":
		step = c.compileRemove(s)
	case "add_segment":
		step = c.compileAdd(s)
	case "truncate":
		if s.Length < 1 {
			c.add("length", "truncate needs a length of at least 1")
		}
		step = &truncateStep{path: c.field("truncate", s.Truncate, true), length: s.Length}
	case "format_date":
		step = c.compileDate(s)
	case "redact":
		step = c.compileRedact(*s.Redact, opt.Dir)
	}
	c.unused(s, ops[0])
	return step, c.problems
}

// ops lists the operation keys a spec sets.
func (s Spec) ops() []string {
	var ops []string
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"set", s.Set != ""}, {"copy", s.Copy != ""}, {"move", s.Move != ""}, {"clear", s.Clear != ""},
		{"delete", s.Delete != ""}, {"map", s.Map != ""}, {"replace", s.Replace != ""},
		{"remove_segments", len(s.RemoveSegments) > 0}, {"add_segment", s.AddSegment != ""},
		{"truncate", s.Truncate != ""}, {"format_date", s.FormatDate != ""}, {"redact", s.Redact != nil},
	} {
		if o.set {
			ops = append(ops, o.name)
		}
	}
	return ops
}

// unused reports options that do not belong to the step's operation, so
// that a misplaced key is not silently ignored.
func (c *compiler) unused(s Spec, op string) {
	belongs := map[string][]string{
		"set": {"value", "template"}, "copy": {"to"}, "move": {"to"},
		"map": {"table", "csv", "on_miss", "default"}, "replace": {"pattern", "with"}, "remove_segments": {"where"},
		"add_segment": {"template", "after"}, "truncate": {"length"}, "format_date": {"from_format", "to_format"},
	}
	for _, o := range []struct {
		key string
		set bool
	}{
		{"value", s.Value != nil}, {"template", s.Template != nil}, {"to", s.To != ""},
		{"table", s.Table != nil}, {"csv", s.CSV != ""}, {"on_miss", s.OnMiss != ""}, {"default", s.Default != ""},
		{"pattern", s.Pattern != ""}, {"with", s.With != nil}, {"after", s.After != ""}, {"length", s.Length != 0},
		{"from_format", s.FromFormat != ""}, {"to_format", s.ToFormat != ""}, {"where", s.Where != nil},
	} {
		if o.set && !contains(belongs[op], o.key) {
			c.add(o.key, "%s does not take %s", op, o.key)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *compiler) compileSet(s Spec) Step {
	p := c.field("set", s.Set, true)
	switch {
	case s.Value != nil && s.Template != nil:
		c.add("set", "set takes value or template, not both")
	case s.Value != nil:
		return &setStep{path: p, value: *s.Value}
	case s.Template != nil:
		return &setStep{path: p, template: c.template("template", *s.Template)}
	default:
		c.add("set", "set needs a value (a literal) or a template (with {{PATH}} placeholders)")
	}
	return nil
}

func (c *compiler) compileReplace(s Spec) Step {
	p := c.field("replace", s.Replace, true)
	if s.Pattern == "" {
		c.add("pattern", "replace needs a pattern")
		return nil
	}
	re, err := regexp.Compile(s.Pattern)
	if err != nil {
		c.add("pattern", "%q is not a valid regular expression: %v", s.Pattern, err)
		return nil
	}
	if s.With == nil {
		c.add("with", "replace needs with (it may be \"\")")
		return nil
	}
	return &replaceStep{path: p, re: re, with: *s.With}
}

var segmentNameRE = regexp.MustCompile(`^([A-Z][A-Z0-9]{2}|Z\*)$`)

func (c *compiler) compileRemove(s Spec) Step {
	st := &removeStep{}
	for i, n := range s.RemoveSegments {
		switch {
		case !segmentNameRE.MatchString(n):
			c.add(fmt.Sprintf("remove_segments[%d]", i), "%q is not a segment name such as NTE, or Z* for every Z-segment", n)
		case n == "MSH":
			c.add(fmt.Sprintf("remove_segments[%d]", i), "MSH cannot be removed")
		case n == "Z*":
			st.allZ = true
		default:
			st.names = append(st.names, n)
		}
	}
	if s.Where != nil {
		cond, problems := condition.Compile(*s.Where)
		for _, p := range problems {
			c.add("where."+p.Key, "%s", p.Message)
		}
		st.where = &cond
	}
	return st
}

func (c *compiler) compileAdd(s Spec) Step {
	st := &addStep{segment: c.template("add_segment", s.AddSegment)}
	if s.Template != nil {
		c.add("template", "add_segment is itself a template: write {{PATH}} placeholders in it")
	}
	name := s.AddSegment[:min(3, len(s.AddSegment))]
	if !segmentNameRE.MatchString(name) || name == "MSH" || (len(s.AddSegment) > 3 && s.AddSegment[3] != '|') {
		c.add("add_segment", "a segment starts with its three-character name, then |, such as ZPI|1|x")
	}
	if s.After != "" {
		if !segmentNameRE.MatchString(s.After) || s.After == "Z*" {
			c.add("after", "%q is not a segment name such as PID", s.After)
		}
		st.after = s.After
	}
	return st
}
