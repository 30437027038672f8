package condition

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

// When is the YAML form of a route's condition: every key set in one When
// must hold. Header keys take one value or a list (one of). A field test
// names a path and one operator. all, any and not combine Whens.
// docs/routing.md describes each with an example.
type When struct {
	Listener             []string `mapstructure:"listener"`
	Type                 []string `mapstructure:"type"`      // MSH-9.1
	Event                []string `mapstructure:"event"`     // MSH-9.2
	Structure            []string `mapstructure:"structure"` // MSH-9.3
	Version              []string `mapstructure:"version"`   // MSH-12
	SendingApplication   []string `mapstructure:"sending_application"`
	SendingFacility      []string `mapstructure:"sending_facility"`
	ReceivingApplication []string `mapstructure:"receiving_application"`
	ReceivingFacility    []string `mapstructure:"receiving_facility"`

	Field   string   `mapstructure:"field"` // a path such as OBX-11 or PID-3.4
	Equals  *string  `mapstructure:"equals"`
	In      []string `mapstructure:"in"`
	Prefix  *string  `mapstructure:"prefix"`
	Matches *string  `mapstructure:"matches"` // a regular expression (RE2)
	Exists  *bool    `mapstructure:"exists"`  // present and not empty
	Empty   *bool    `mapstructure:"empty"`   // absent or empty
	GT      *float64 `mapstructure:"gt"`
	GE      *float64 `mapstructure:"ge"`
	LT      *float64 `mapstructure:"lt"`
	LE      *float64 `mapstructure:"le"`
	Before  *string  `mapstructure:"before"` // HL7 date/time, such as 20000101
	After   *string  `mapstructure:"after"`
	Over    string   `mapstructure:"over" enum:"any,all"` // any (default) | all: over every segment of that name and repetition

	All []When `mapstructure:"all"`
	Any []When `mapstructure:"any"`
	Not *When  `mapstructure:"not"`

	// A script that returns whether the message matches: an expression
	// or a body that returns a boolean (docs/scripts.md).
	Script     string `mapstructure:"script"`
	ScriptFile string `mapstructure:"script_file"` // or a file, relative to the config file
	Mirth      bool   `mapstructure:"mirth"`       // written for Mirth Connect (a filter)
}

// Condition is a compiled When.
type Condition struct{ root node }

// Input is what a condition looks at: the listener a message came in on,
// and the message. With a Scope, a field path on that segment's name
// (OBX-11) means that one segment: a step's where, such as "remove the OBX
// whose OBX-11 is D", is evaluated once per segment.
type Input struct {
	Listener string
	Message  *hl7.Message
	Scope    Scope
	Header   *Header // optional: the message's header values, read once for every condition; nil reads them each time
	// Vars are the message's variables so far, for scripts (a step's own
	// when sees what earlier steps set).
	Vars map[string]string
	// Log, when not nil, collects what scripts log (route test).
	Log *[]script.LogLine
}

// Header keeps the header values conditions compare (type, event, ...)
// once read from one message, so that ten routes testing MSH-9 read it
// once. The zero value is empty; use a new one for each message.
type Header struct {
	values [headerSlots][]byte
	read   uint16
}

// The header values a Header keeps, and where each is.
const (
	slotType = iota
	slotEvent
	slotStructure
	slotVersion
	slotSendingApplication
	slotSendingFacility
	slotReceivingApplication
	slotReceivingFacility
	headerSlots
)

var headerPaths = [headerSlots]hl7.Path{
	hl7.PathMSH91, hl7.PathMSH92, hl7.PathMSH93, hl7.MustParsePath("MSH-12.1"),
	hl7.MustParsePath("MSH-3.1"), hl7.MustParsePath("MSH-4.1"), hl7.MustParsePath("MSH-5.1"), hl7.MustParsePath("MSH-6.1"),
}

// header returns header value slot of the message, through in.Header
// when there is one.
func (in Input) header(slot int) []byte {
	h := in.Header
	if h == nil {
		return in.Message.Value(headerPaths[slot])
	}
	if h.read&(1<<slot) == 0 {
		h.values[slot] = in.Message.Value(headerPaths[slot])
		h.read |= 1 << slot
	}
	return h.values[slot]
}

// Scope is one segment: the Occurrence-th (1-based) segment named Segment.
type Scope struct {
	Segment    string
	Occurrence int
}

// Match reports whether in satisfies the condition.
func (c Condition) Match(in Input) bool { return c.root == nil || c.root.match(in) }

// Explain is Match with the reason: the condition that decided.
func (c Condition) Explain(in Input) (bool, string) {
	if c.root == nil {
		return true, "no condition"
	}
	return c.root.explain(in)
}

// node is one compiled test.
type node interface {
	match(Input) bool
	explain(Input) (bool, string)
}

// Options are what compiling scripts needs.
type Options struct {
	// Scripts compiles script tests; nil: a script is a problem.
	Scripts *script.Engine
	// ReadFile reads a script_file, relative to the config file.
	ReadFile func(name string) ([]byte, error)
	// Name says where the condition is written ("route adt when"), to
	// name an inline script in errors.
	Name string
}

// Compile compiles w, or returns every problem keyed relative to it
// ("type[0]", "all[1].field"). A script in w is a problem: use
// CompileWith.
func Compile(w When) (Condition, []Problem) { return CompileWith(w, Options{}) }

// CompileWith is Compile with scripts.
func CompileWith(w When, o Options) (Condition, []Problem) {
	c := whenCompiler{opt: o}
	n := c.compile("", w)
	if len(c.problems) > 0 {
		return Condition{}, c.problems
	}
	return Condition{root: n}, nil
}

// Problem is one thing wrong with a condition, at a key relative to it.
type Problem struct {
	Key     string
	Message string
}

type whenCompiler struct {
	problems []Problem
	opt      Options
}

func (c *whenCompiler) add(key, format string, args ...any) {
	c.problems = append(c.problems, Problem{Key: strings.TrimPrefix(key, "."), Message: fmt.Sprintf(format, args...)})
}

var codeRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

func (c *whenCompiler) compile(key string, w When) node {
	var all []node
	header := func(name string, values []string, slot int) {
		for i, v := range values {
			if !codeRE.MatchString(v) {
				c.add(fmt.Sprintf("%s.%s[%d]", key, name, i), "%q is not a code such as ADT, A01 or 2.5.1", v)
			}
		}
		if len(values) > 0 {
			all = append(all, &headerNode{name: name, values: values, slot: slot, fromMessage: true})
		}
	}
	if len(w.Listener) > 0 {
		all = append(all, &headerNode{name: "listener", values: w.Listener})
	}
	header("type", w.Type, slotType)
	header("event", w.Event, slotEvent)
	header("structure", w.Structure, slotStructure)
	header("version", w.Version, slotVersion)
	header("sending_application", w.SendingApplication, slotSendingApplication)
	header("sending_facility", w.SendingFacility, slotSendingFacility)
	header("receiving_application", w.ReceivingApplication, slotReceivingApplication)
	header("receiving_facility", w.ReceivingFacility, slotReceivingFacility)
	if f := c.field(key, w); f != nil {
		all = append(all, f)
	}
	for i, sub := range w.All {
		all = append(all, c.compile(fmt.Sprintf("%s.all[%d]", key, i), sub))
	}
	if len(w.Any) > 0 {
		anyOf := &anyNode{}
		for i, sub := range w.Any {
			anyOf.nodes = append(anyOf.nodes, c.compile(fmt.Sprintf("%s.any[%d]", key, i), sub))
		}
		all = append(all, anyOf)
	}
	if w.Not != nil {
		all = append(all, &notNode{c.compile(key+".not", *w.Not)})
	}
	if n := c.script(key, w); n != nil {
		all = append(all, n)
	}
	switch len(all) {
	case 0:
		return trueNode{}
	case 1:
		return all[0]
	}
	return &allNode{all}
}

// fieldOp is one operator of a field test (equals, in, prefix...): its
// key, whether a When sets it, and what it compiles into. Adding an
// operator is a field of When and an entry of fieldOps; a key no entry
// has is refused when the config is decoded (an unknown key, at its
// line), never taken for another test.
type fieldOp struct {
	name    string
	set     func(w When) bool
	compile func(w When, key string, c *whenCompiler) fieldTest
}

// fieldTest is a compiled operator: test says whether one value passes
// (exists: instead, whether any value is present is compared with it);
// what is how explain names it.
type fieldTest struct {
	test   func(v []byte) bool
	exists *bool
	what   string
}

var fieldOps = []fieldOp{
	{"equals", func(w When) bool { return w.Equals != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		want := *w.Equals
		return fieldTest{test: func(v []byte) bool { return string(v) == want }, what: fmt.Sprintf("equals %q", want)}
	}},
	{"in", func(w When) bool { return w.In != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		values := w.In
		return fieldTest{test: func(v []byte) bool {
			for _, want := range values {
				if string(v) == want {
					return true
				}
			}
			return false
		}, what: fmt.Sprintf("is one of %q", values)}
	}},
	{"prefix", func(w When) bool { return w.Prefix != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		p := []byte(*w.Prefix)
		return fieldTest{test: func(v []byte) bool { return bytes.HasPrefix(v, p) }, what: fmt.Sprintf("prefix %q", *w.Prefix)}
	}},
	{"matches", func(w When) bool { return w.Matches != nil }, func(w When, key string, c *whenCompiler) fieldTest {
		re, err := regexp.Compile(*w.Matches)
		if err != nil {
			c.add(key+".matches", "%q is not a valid regular expression: %v", *w.Matches, err)
			return fieldTest{}
		}
		return fieldTest{test: re.Match, what: fmt.Sprintf("matches %q", re.String())}
	}},
	{"exists", func(w When) bool { return w.Exists != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		want := *w.Exists
		return fieldTest{exists: &want, what: map[bool]string{true: "exists", false: "is empty or absent"}[want]}
	}},
	{"empty", func(w When) bool { return w.Empty != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		want := !*w.Empty
		return fieldTest{exists: &want, what: map[bool]string{true: "exists", false: "is empty or absent"}[want]}
	}},
	numberOp("gt", func(w When) *float64 { return w.GT }, func(n, x float64) bool { return n > x }),
	numberOp("ge", func(w When) *float64 { return w.GE }, func(n, x float64) bool { return n >= x }),
	numberOp("lt", func(w When) *float64 { return w.LT }, func(n, x float64) bool { return n < x }),
	numberOp("le", func(w When) *float64 { return w.LE }, func(n, x float64) bool { return n <= x }),
	timeOp("before", func(w When) *string { return w.Before }, time.Time.Before),
	timeOp("after", func(w When) *string { return w.After }, time.Time.After),
}

// numberOp compares a value read as a number (a value that is not one
// fails the test).
func numberOp(name string, of func(When) *float64, cmp func(n, x float64) bool) fieldOp {
	return fieldOp{name, func(w When) bool { return of(w) != nil }, func(w When, _ string, _ *whenCompiler) fieldTest {
		x := *of(w)
		return fieldTest{test: func(v []byte) bool {
			n, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
			return err == nil && cmp(n, x)
		}, what: name + " " + strconv.FormatFloat(x, 'g', -1, 64)}
	}}
}

// timeOp compares a value read as an HL7 time (a value that is not one
// fails the test).
func timeOp(name string, of func(When) *string, cmp func(t, x time.Time) bool) fieldOp {
	return fieldOp{name, func(w When) bool { return of(w) != nil }, func(w When, key string, c *whenCompiler) fieldTest {
		text := *of(w)
		x, err := hl7.ParseTime(text)
		if err != nil {
			c.add(key+"."+name, "%q is not an HL7 date such as 20000101 or 20260114081500", text)
		}
		return fieldTest{test: func(v []byte) bool {
			t, err := hl7.ParseTime(string(v))
			return err == nil && cmp(t, x)
		}, what: name + " " + text}
	}}
}

// Operators are the field tests' operators, in the order docs/routing.md
// gives them.
func Operators() []string {
	var names []string
	for _, op := range fieldOps {
		names = append(names, op.name)
	}
	return names
}

func fieldOpNames() string { return strings.Join(Operators(), ", ") }

// field compiles the field test of w, if it has one.
func (c *whenCompiler) field(key string, w When) node {
	var set []fieldOp
	for _, op := range fieldOps {
		if op.set(w) {
			set = append(set, op)
		}
	}
	if w.Field == "" {
		switch {
		case len(set) > 0:
			c.add(key+"."+set[0].name, "a field test needs field: PATH")
		case w.Over != "":
			c.add(key+".over", "a field test needs field: PATH")
		}
		return nil
	}
	p, err := hl7.ParsePath(w.Field)
	if err != nil || p.Field == 0 {
		c.add(key+".field", "%q is not a field path such as OBX-11 or PID-3.1", w.Field)
		return nil
	}
	if len(set) != 1 {
		c.add(key+".field", "a field test takes one of %s; here %d", fieldOpNames(), len(set))
		return nil
	}
	if w.Over != "" && w.Over != "any" && w.Over != "all" {
		c.add(key+".over", "%q is not any or all", w.Over)
	}
	return &fieldNode{path: p, all: w.Over == "all", fieldTest: set[0].compile(w, key, c)}
}

type trueNode struct{}

func (trueNode) match(Input) bool             { return true }
func (trueNode) explain(Input) (bool, string) { return true, "no condition" }

type allNode struct{ nodes []node }

func (a *allNode) match(in Input) bool {
	for _, n := range a.nodes {
		if !n.match(in) {
			return false
		}
	}
	return true
}

func (a *allNode) explain(in Input) (bool, string) {
	var whys []string
	for _, n := range a.nodes {
		ok, why := n.explain(in)
		if !ok {
			return false, why
		}
		whys = append(whys, why)
	}
	return true, strings.Join(whys, " and ")
}

type anyNode struct{ nodes []node }

func (a *anyNode) match(in Input) bool {
	for _, n := range a.nodes {
		if n.match(in) {
			return true
		}
	}
	return false
}

func (a *anyNode) explain(in Input) (bool, string) {
	var whys []string
	for _, n := range a.nodes {
		ok, why := n.explain(in)
		if ok {
			return true, why
		}
		whys = append(whys, why)
	}
	return false, "none of (" + strings.Join(whys, "; ") + ")"
}

type notNode struct{ n node }

func (n *notNode) match(in Input) bool { return !n.n.match(in) }

func (n *notNode) explain(in Input) (bool, string) {
	ok, why := n.n.explain(in)
	return !ok, "not (" + why + ")"
}

// headerNode: a header value (or the listener) is one of values.
type headerNode struct {
	name        string
	values      []string
	slot        int  // which header value
	fromMessage bool // false: the listener
}

// match compares bytes with strings: no allocation.
func (h *headerNode) match(in Input) bool {
	if !h.fromMessage {
		return slices.Contains(h.values, in.Listener)
	}
	v := in.header(h.slot)
	for _, want := range h.values {
		if string(v) == want {
			return true
		}
	}
	return false
}

func (h *headerNode) explain(in Input) (bool, string) {
	ok := h.match(in)
	return ok, fmt.Sprintf("%s %s one of %v", h.name, isOrNot(ok), h.values)
}

func isOrNot(ok bool) string {
	if ok {
		return "is"
	}
	return "is not"
}

// fieldNode tests the values at a path: each occurrence of its segment
// (unless the path names one) and each repetition (unless it names one).
type fieldNode struct {
	path hl7.Path
	all  bool // over: all
	fieldTest
}

func (f *fieldNode) match(in Input) bool {
	if f.exists != nil {
		return f.present(in) == *f.exists
	}
	if f.test == nil { // did not compile (a problem was reported)
		return false
	}
	seen := false
	for v := range f.valuesIn(in.Message, in.Scope) {
		seen = true
		ok := f.test(v)
		if ok && !f.all {
			return true
		}
		if !ok && f.all {
			return false
		}
	}
	return seen && f.all
}

func (f *fieldNode) explain(in Input) (bool, string) {
	ok := f.match(in)
	over := ""
	if f.all {
		over = " (every one)"
	}
	return ok, fmt.Sprintf("%s%s %s: %v", f.path, over, f.what, ok)
}

func (f *fieldNode) present(in Input) bool {
	for v := range f.valuesIn(in.Message, in.Scope) {
		if len(v) > 0 {
			return true
		}
	}
	return false
}

// valuesIn yields the decoded values the path covers (hl7's Values);
// with a scope on the path's segment, only that segment's.
func (f *fieldNode) valuesIn(m *hl7.Message, scope Scope) func(func([]byte) bool) {
	p := f.path
	if p.Occurrence == 0 && scope.Segment == p.Segment {
		p.Occurrence = scope.Occurrence
	}
	return func(yield func([]byte) bool) {
		for _, v := range m.Values(p) {
			if !yield(v) {
				return
			}
		}
	}
}

// Failure is a test that could not decide: a script that threw or hit a
// limit. Match panics with it (the router recovers it and dead-letters
// the message for that route); MatchErr returns it.
type Failure struct{ Err error }

func (f *Failure) Error() string { return f.Err.Error() }

func (f *Failure) Unwrap() error { return f.Err }

// MatchErr is Match, with a test that could not decide returned as an
// error rather than raised.
func (c Condition) MatchErr(in Input) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, isFailure := p.(*Failure)
			if !isFailure {
				panic(p)
			}
			ok, err = false, f
		}
	}()
	return c.Match(in), nil
}

// script compiles w's script test, if it has one.
func (c *whenCompiler) script(key string, w When) node {
	if w.Script == "" && w.ScriptFile == "" {
		if w.Mirth {
			c.add(key+".mirth", "mirth goes with script or script_file")
		}
		return nil
	}
	src, name, at := w.Script, c.opt.Name, key+".script"
	if name == "" {
		name = "condition"
	}
	switch {
	case w.Script != "" && w.ScriptFile != "":
		c.add(at, "a condition takes script or script_file, not both")
		return nil
	case w.ScriptFile != "":
		at, name = key+".script_file", w.ScriptFile
		if c.opt.ReadFile == nil {
			c.add(at, "cannot read %s here", w.ScriptFile)
			return nil
		}
		data, err := c.opt.ReadFile(w.ScriptFile)
		if err != nil {
			c.add(at, "cannot read %s: %v", w.ScriptFile, err)
			return nil
		}
		src = string(data)
	}
	if c.opt.Scripts == nil {
		c.add(at, "scripts cannot run here")
		return nil
	}
	s, err := c.opt.Scripts.Compile(name, script.Condition, src, w.Mirth)
	if err != nil {
		var se *script.Error
		if errors.As(err, &se) && se.Line > 0 {
			c.add(at, "line %d:%d: %s", se.Line, se.Column, se.Reason)
		} else {
			c.add(at, "%v", err)
		}
		return nil
	}
	return &scriptNode{s: s}
}

// scriptNode is a script test.
type scriptNode struct{ s *script.Script }

func (n *scriptNode) match(in Input) bool {
	vars := in.Vars
	if vars != nil {
		vars = maps.Clone(vars) // a condition reads the variables; what it sets stays with it
	}
	res, err := n.s.Run(&script.Input{Message: in.Message, Vars: vars, Log: in.Log})
	if err != nil {
		panic(&Failure{Err: err})
	}
	return res.Matched
}

func (n *scriptNode) explain(in Input) (bool, string) {
	ok := n.match(in)
	return ok, fmt.Sprintf("script %s returned %v", n.s.Name(), ok)
}
