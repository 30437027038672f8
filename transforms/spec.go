package transforms

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

// Spec is one step as the config writes it: exactly one operation key
// (set, copy, move, ... as registered by RegisterStep) naming what it
// works on, plus that operation's options. docs/routing.md describes each
// with an example. From a file, Compile decodes its keys into the
// operation's options struct; a Spec built in code sets Op and Options.
type Spec struct {
	Op      string          // the operation
	Options any             // a pointer to the operation's options struct (SetOptions for set...)
	When    *condition.When // the step's own condition, if any

	raw map[string]any // the keys as written, until compiled
}

// SpecFrom is a step as a config file writes it (its YAML mapping).
func SpecFrom(m map[string]any) Spec { return Spec{raw: m} }

// Raw is the step's keys as written (nil for a Spec built in code).
func (s Spec) Raw() map[string]any { return s.raw }

// SpecHook is a mapstructure decode hook that reads a step's mapping as a
// Spec, for the config's decoder.
func SpecHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[Spec]() {
		return data, nil
	}
	if m, ok := data.(map[string]any); ok {
		return SpecFrom(m), nil
	}
	return data, nil
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
	// Scripts compiles script steps and scripts in a step's when; nil:
	// they are a problem.
	Scripts *script.Engine
	// Name is the route's, to name inline scripts in errors.
	Name string
}

// Compile turns specs into a Pipeline, or returns every problem of every
// step, keyed "[i].key".
func Compile(specs []Spec, opt Options) (Pipeline, []Problem) {
	var p Pipeline
	var problems []Problem
	for i, s := range specs {
		step, probs := compileOne(s, opt, i)
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

// Compiler collects the problems of one step, for a StepType's Compile.
type Compiler struct {
	problems []Problem
	opt      Options
	index    int // the step's place in its pipeline
}

// Add adds a problem at key, relative to the step ("set", "pattern").
func (c *Compiler) Add(key, format string, args ...any) { c.add(key, format, args...) }

// Field parses a path that must name a field (or part of one), writable
// or read; a problem at key if it does not.
func (c *Compiler) Field(key, path string, writable bool) hl7.Path {
	return c.field(key, path, writable)
}

func (c *Compiler) add(key, format string, args ...any) {
	c.problems = append(c.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// field parses a path that must name a field (or part of one) that can be
// written or read.
func (c *Compiler) field(key, s string, writable bool) hl7.Path {
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

func compileOne(s Spec, opt Options, index int) (Step, []Problem) {
	c := Compiler{opt: opt, index: index}
	raw := s.raw
	var when any
	if w, ok := raw["when"]; ok { // any step may have its own when
		raw = maps.Clone(raw)
		delete(raw, "when")
		when = w
	}
	if s.Options == nil {
		var ok bool
		if s.Op, s.Options, ok = c.decode(raw); !ok {
			return nil, c.problems
		}
	}
	t, ok := lookupStep(s.Op)
	if !ok {
		c.add("", "%q is not a step: %s", s.Op, strings.Join(StepTypes(), ", "))
		return nil, c.problems
	}
	step := t.compile(s.Options, &c)
	if s.When != nil {
		when = s.When
	}
	if when != nil && step != nil {
		step = c.guard(step, when)
	}
	return step, c.problems
}

// guard makes step run only on messages its when holds for (at that step:
// after the steps before it, with the variables they set).
func (c *Compiler) guard(step Step, raw any) Step {
	var w condition.When
	switch v := raw.(type) {
	case *condition.When:
		w = *v
	default:
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &w, ErrorUnused: true, WeaklyTypedInput: true,
			DecodeHook: mapstructure.StringToSliceHookFunc(",")})
		if err != nil {
			panic(err)
		}
		if err := dec.Decode(v); err != nil {
			c.add("when", "%s", strings.ReplaceAll(err.Error(), "\n", " "))
			return nil
		}
	}
	cond, problems := condition.CompileWith(w, condition.Options{Scripts: c.opt.Scripts, ReadFile: c.opt.ReadFile, Name: c.scriptName() + " when"})
	for _, p := range problems {
		c.add(strings.TrimSuffix("when."+p.Key, "."), "%s", p.Message)
	}
	return &guardedStep{step: step, when: cond}
}

// guardedStep is a step with its own when.
type guardedStep struct {
	step Step
	when condition.Condition
}

func (g *guardedStep) String() string { return g.step.String() + " (when)" }

func (g *guardedStep) Apply(m *hl7.Message) error { return g.ApplyState(m, &State{}) }

func (g *guardedStep) ApplyState(m *hl7.Message, st *State) error {
	ok, err := g.when.MatchErr(condition.Input{Listener: st.Listener, Message: m, Vars: st.Vars, Log: st.Log})
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if ss, isStateful := g.step.(StatefulStep); isStateful {
		return ss.ApplyState(m, st)
	}
	return g.step.Apply(m)
}

// decode finds a written step's operation and decodes its keys into the
// operation's options.
func (c *Compiler) decode(raw map[string]any) (string, any, bool) {
	var ops []string
	for _, name := range StepTypes() {
		if _, ok := raw[name]; ok {
			ops = append(ops, name)
		}
	}
	switch len(ops) {
	case 0:
		msg := "a step needs one operation: " + strings.Join(StepTypes(), ", ")
		if len(raw) > 0 {
			msg += "; it has " + strings.Join(slices.Sorted(maps.Keys(raw)), ", ")
		}
		c.add("", "%s", msg)
		return "", nil, false
	case 1:
	default:
		c.add("", "a step has one operation, not %s", strings.Join(ops, " and "))
		return "", nil, false
	}
	t, _ := lookupStep(ops[0])
	opts := reflect.New(t.options).Interface()
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: opts, Metadata: &md, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))})
	if err != nil {
		panic(err)
	}
	if err := dec.Decode(raw); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimSpace(line)
			if key, msg, ok := strings.Cut(strings.TrimPrefix(line, "'"), "' "); ok && strings.HasPrefix(line, "'") {
				c.add(strings.TrimPrefix(key, reflect.TypeOf(opts).Elem().String()+"."), "%s", msg)
			}
		}
		if len(c.problems) == 0 {
			c.add(ops[0], "%s", strings.ReplaceAll(err.Error(), "\n", " "))
		}
		return "", nil, false
	}
	for _, k := range md.Unused {
		c.add(k, "%s does not take %s", ops[0], k)
	}
	return ops[0], opts, len(md.Unused) == 0
}

// The steps in the order docs/routing.md gives them: a new kind is a
// file defining its StepType, and one line here.
func init() {
	RegisterStep(setType)
	RegisterStep(copyType)
	RegisterStep(moveType)
	RegisterStep(clearType)
	RegisterStep(deleteType)
	RegisterStep(mapType)
	RegisterStep(replaceType)
	RegisterStep(removeType)
	RegisterStep(addType)
	RegisterStep(truncateType)
	RegisterStep(dateType)
	RegisterStep(caseType)
	RegisterStep(phoneType)
	RegisterStep(redactType)
	RegisterStep(scriptType)
	RegisterStep(scriptFileType)
}

// SetOptions are the keys of set: a literal value or a template.
type SetOptions struct {
	Set      string  `mapstructure:"set"`
	Value    *string `mapstructure:"value"`    // a literal, escaped as needed
	Template *string `mapstructure:"template"` // ER7 text with {{PATH}} placeholders
}

var setType = StepType[SetOptions]{Name: "set", Compile: func(s *SetOptions, c *Compiler) Step {
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
}}

// CopyOptions are the keys of copy; MoveOptions of move (the source
// field cleared after).
type CopyOptions struct {
	Copy string `mapstructure:"copy"`
	To   string `mapstructure:"to"` // the destination path
}

// MoveOptions are the keys of move.
type MoveOptions struct {
	Move string `mapstructure:"move"`
	To   string `mapstructure:"to"`
}

var (
	copyType = StepType[CopyOptions]{Name: "copy", Compile: func(s *CopyOptions, c *Compiler) Step {
		return c.compileCopy("copy", s.Copy, s.To, false)
	}}
	moveType = StepType[MoveOptions]{Name: "move", Compile: func(s *MoveOptions, c *Compiler) Step {
		return c.compileCopy("move", s.Move, s.To, true)
	}}
)

func (c *Compiler) compileCopy(op, from, to string, move bool) Step {
	if to == "" {
		c.add("to", "%s needs a destination path in to", op)
	}
	return &copyStep{from: c.field(op, from, false), to: c.field("to", to, true), move: move}
}

// ClearOptions are the keys of clear.
type ClearOptions struct {
	Clear string `mapstructure:"clear"`
}

var clearType = StepType[ClearOptions]{Name: "clear", Compile: func(s *ClearOptions, c *Compiler) Step {
	return &clearStep{path: c.field("clear", s.Clear, true)}
}}

// DeleteOptions are the keys of delete.
type DeleteOptions struct {
	Delete string `mapstructure:"delete"`
}

var deleteType = StepType[DeleteOptions]{Name: "delete", Compile: func(s *DeleteOptions, c *Compiler) Step {
	p, err := hl7.ParsePath(s.Delete)
	if err != nil {
		c.add("delete", "%q is not a path such as PID-13 or OBX[2]", s.Delete)
	} else if p.Segment == "MSH" && (p.Field == 0 || p.Field <= 2) {
		c.add("delete", "%q cannot be deleted", s.Delete)
	}
	return &deleteStep{path: p}
}}

// ReplaceOptions are the keys of replace.
type ReplaceOptions struct {
	Replace string  `mapstructure:"replace"`
	Pattern string  `mapstructure:"pattern"` // a regular expression (Go RE2 syntax)
	With    *string `mapstructure:"with"`    // the replacement; $1 names a group
}

var replaceType = StepType[ReplaceOptions]{Name: "replace", Compile: func(s *ReplaceOptions, c *Compiler) Step {
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
}}

var segmentNameRE = regexp.MustCompile(`^([A-Z][A-Z0-9]{2}|Z\*)$`)

// RemoveOptions are the keys of remove_segments.
type RemoveOptions struct {
	RemoveSegments []string        `mapstructure:"remove_segments"` // names; Z* means every Z-segment
	Where          *condition.When `mapstructure:"where"`           // only segments for which this holds
}

var removeType = StepType[RemoveOptions]{Name: "remove_segments", Compile: func(s *RemoveOptions, c *Compiler) Step {
	st := &removeStep{}
	if len(s.RemoveSegments) == 0 {
		c.add("remove_segments", "name the segments to remove, such as [NTE] or [Z*]")
	}
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
		cond, problems := condition.CompileWith(*s.Where, condition.Options{Scripts: c.opt.Scripts, ReadFile: c.opt.ReadFile, Name: c.scriptName() + " where"})
		for _, p := range problems {
			c.add("where."+p.Key, "%s", p.Message)
		}
		st.where = &cond
	}
	return st
}}

// AddOptions are the keys of add_segment.
type AddOptions struct {
	AddSegment string `mapstructure:"add_segment"` // a segment such as ZPI|1|x, itself a template: {{PATH}} placeholders
	After      string `mapstructure:"after"`       // after the last segment of this name
}

var addType = StepType[AddOptions]{Name: "add_segment", Compile: func(s *AddOptions, c *Compiler) Step {
	st := &addStep{segment: c.template("add_segment", s.AddSegment)}
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
}}

// TruncateOptions are the keys of truncate.
type TruncateOptions struct {
	Truncate string `mapstructure:"truncate"`
	Length   int    `mapstructure:"length"` // characters kept
}

var truncateType = StepType[TruncateOptions]{Name: "truncate", Compile: func(s *TruncateOptions, c *Compiler) Step {
	if s.Length < 1 {
		c.add("length", "truncate needs a length of at least 1")
	}
	return &truncateStep{path: c.field("truncate", s.Truncate, true), length: s.Length}
}}
