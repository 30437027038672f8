package transforms

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/script"
)

// Step is one compiled edit. Apply changes m in place; its error says what
// failed and why, naming paths and never field values (it is logged and
// kept with the message in the dead-letter queue).
type Step interface {
	Apply(m *hl7.Message) error
	// String describes the step for tools such as route test: "set PID-3.1".
	String() string
}

// Pipeline is a route's steps, in order.
type Pipeline []Step

// State is what one message's steps share besides the message: its
// variables (set by scripts, seen by later steps, conditions, encoders and
// templates), the listener it came in on (for a step's when), and where
// script log lines go when a person is watching (route test).
type State struct {
	Listener string
	Vars     map[string]string
	Log      *[]script.LogLine
}

// StatefulStep is a step that reads or sets the message's State: a
// script, or a step with its own when.
type StatefulStep interface {
	Step
	ApplyState(m *hl7.Message, st *State) error
}

// StepError is a step that failed on one message.
type StepError struct {
	Step   int    // 0-based position in the pipeline
	What   string // the step, such as "map PV1-3.4"
	Reason string
	Err    error // what failed (a *script.Error for a script), if any
}

func (e *StepError) Unwrap() error { return e.Err }

func (e *StepError) Error() string {
	return fmt.Sprintf("transform step %d (%s): %s", e.Step+1, e.What, e.Reason)
}

// Apply returns data after every step: data itself, untouched, when the
// pipeline is empty, so that a message no step changes is forwarded byte
// for byte.
func (p Pipeline) Apply(data []byte) ([]byte, error) {
	if len(p) == 0 {
		return data, nil
	}
	m, err := hl7.Parse(data)
	if err != nil {
		return nil, &StepError{Step: 0, What: "parse", Reason: reason(err)}
	}
	if err := p.ApplyTo(m, nil); err != nil {
		return nil, err
	}
	return m.Bytes(), nil
}

// ApplyParsed is Apply for a message already parsed (m is data parsed):
// the steps edit a clone, so m is left as it was for other routes. The
// clone's index and scratch memory come from a pool; the bytes returned
// are the caller's to keep.
func (p Pipeline) ApplyParsed(m *hl7.Message, data []byte, st *State) ([]byte, error) {
	if len(p) == 0 {
		return data, nil
	}
	c := clones.Get().(*hl7.Message)
	defer func() { c.Reset(); clones.Put(c) }() // Reset drops c's bytes, never writes them
	m.CloneInto(c)
	if err := p.ApplyTo(c, st); err != nil {
		return nil, err
	}
	return c.Bytes(), nil
}

var clones = sync.Pool{New: func() any { return new(hl7.Message) }}

// ApplyTo runs every step on m, stopping at the first that fails. A step
// that panics fails like any other, with a reason saying so: the message
// is dead-lettered and the rest flow on. st may be nil when no step needs
// one.
func (p Pipeline) ApplyTo(m *hl7.Message, st *State) error {
	if st == nil {
		st = &State{}
	}
	for i, s := range p {
		if err := applyStep(s, m, st); err != nil {
			return &StepError{Step: i, What: s.String(), Reason: reason(err), Err: err}
		}
	}
	return nil
}

// ErrStepPanicked is the reason of a step that panicked.
var ErrStepPanicked = errors.New("the step panicked (a bug in hl7broker: please report it)")

func applyStep(s Step, m *hl7.Message, st *State) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if f, ok := p.(*condition.Failure); ok { // a step's when that could not decide
				err = f
				return
			}
			err = ErrStepPanicked
		}
	}()
	if ss, ok := s.(StatefulStep); ok {
		return ss.ApplyState(m, st)
	}
	return s.Apply(m)
}

// reason is an error's text without the path quoting of hl7 errors, which
// name paths only.
func reason(err error) string {
	if pe, ok := err.(*hl7.PathError); ok {
		return pe.Reason
	}
	return err.Error()
}

type setStep struct {
	path     hl7.Path
	value    string
	template *template
}

func (s *setStep) String() string { return "set " + s.path.String() }

func (s *setStep) Apply(m *hl7.Message) error {
	if s.template != nil {
		return m.SetRaw(s.path, s.template.expand(m))
	}
	return m.Set(s.path, s.value)
}

type copyStep struct {
	from, to hl7.Path
	move     bool
}

func (s *copyStep) String() string {
	if s.move {
		return "move " + s.from.String() + " to " + s.to.String()
	}
	return "copy " + s.from.String() + " to " + s.to.String()
}

func (s *copyStep) Apply(m *hl7.Message) error {
	raw, _ := m.Raw(s.from)
	if err := m.SetRaw(s.to, raw); err != nil { // SetRaw reads raw before it writes m's bytes
		return err
	}
	if s.move {
		return m.Delete(s.from)
	}
	return nil
}

type clearStep struct{ path hl7.Path }

func (s *clearStep) String() string             { return "clear " + s.path.String() }
func (s *clearStep) Apply(m *hl7.Message) error { return m.Clear(s.path) }

type deleteStep struct{ path hl7.Path }

func (s *deleteStep) String() string             { return "delete " + s.path.String() }
func (s *deleteStep) Apply(m *hl7.Message) error { return m.Delete(s.path) }

type replaceStep struct {
	path hl7.Path
	re   *regexp.Regexp
	with string
}

func (s *replaceStep) String() string { return "replace in " + s.path.String() }

func (s *replaceStep) Apply(m *hl7.Message) error {
	if !m.Has(s.path) {
		return nil
	}
	v := m.Value(s.path)
	if !s.re.Match(v) {
		return nil // no copy made when nothing would change
	}
	out := s.re.ReplaceAll(v, []byte(s.with))
	if string(out) == string(v) {
		return nil // untouched bytes stay untouched
	}
	return m.Set(s.path, string(out))
}

type truncateStep struct {
	path   hl7.Path
	length int
}

func (s *truncateStep) String() string { return fmt.Sprintf("truncate %s to %d", s.path, s.length) }

func (s *truncateStep) Apply(m *hl7.Message) error {
	v := m.Value(s.path)
	if utf8.RuneCount(v) <= s.length {
		return nil
	}
	cut, n := 0, 0
	for cut < len(v) && n < s.length {
		_, size := utf8.DecodeRune(v[cut:])
		cut += size
		n++
	}
	return m.Set(s.path, string(v[:cut]))
}

// removeStep removes every segment with one of names (or any Z-segment),
// or with where, those for which where holds, evaluated on each segment.
type removeStep struct {
	names []string
	allZ  bool
	where *condition.Condition
}

func (s *removeStep) String() string {
	names := slices.Clone(s.names)
	if s.allZ {
		names = append(names, "Z*")
	}
	if s.where != nil {
		return fmt.Sprintf("remove_segments %v where", names)
	}
	return fmt.Sprintf("remove_segments %v", names)
}

func (s *removeStep) Apply(m *hl7.Message) error {
	// Decide first, on the message as it is, then remove from the end so
	// that earlier indexes stay valid.
	var small [16]int
	remove := small[:0]
	var seen map[string]int // occurrences so far, by name: for where only
	for seg := range m.Segments() {
		name, ok := s.selects(seg)
		if seg.Index() == 0 || !ok {
			continue
		}
		if s.where != nil {
			if seen == nil {
				seen = map[string]int{}
			}
			seen[name]++
			if !s.where.Match(condition.Input{Message: m, Scope: condition.Scope{Segment: name, Occurrence: seen[name]}}) {
				continue
			}
		}
		remove = append(remove, seg.Index())
	}
	for _, i := range slices.Backward(remove) {
		if err := m.RemoveSegment(i); err != nil {
			return err
		}
	}
	return nil
}

// selects reports whether seg is one the step removes, and its name
// (allocated only for a Z-segment under a where).
func (s *removeStep) selects(seg hl7.Segment) (string, bool) {
	for _, name := range s.names {
		if seg.NameIs(name) {
			return name, true
		}
	}
	if s.allZ && seg.Bytes()[0] == 'Z' {
		if s.where == nil {
			return "", true
		}
		return seg.Name(), true
	}
	return "", false
}

// addStep inserts a segment after the last one named after, or at the end.
type addStep struct {
	segment *template
	after   string
}

func (s *addStep) String() string {
	name := s.segment.text[:min(3, len(s.segment.text))]
	if s.after != "" {
		return "add_segment " + name + " after " + s.after
	}
	return "add_segment " + name
}

func (s *addStep) Apply(m *hl7.Message) error {
	at := m.SegmentCount()
	if s.after != "" {
		found := false
		for seg := range m.SegmentsNamed(s.after) {
			at, found = seg.Index()+1, true
		}
		if !found {
			return fmt.Errorf("no %s segment to add after", s.after)
		}
	}
	return m.InsertSegment(at, s.segment.expand(m))
}
