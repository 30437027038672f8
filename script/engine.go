package script

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"github.com/hl7broker/hl7broker/hl7"
)

// Limits bound one run of a script. Zero fields mean the defaults.
type Limits struct {
	// Time a run may take before it is interrupted (default 1s).
	Time time.Duration
	// Memory is how much the broker's heap may grow while one slow run
	// (past 5 ms) is in progress before it is interrupted (default 256 MiB).
	Memory int64
	// Stack is the deepest call nesting allowed (default 1000).
	Stack int
}

// Default limits.
const (
	DefaultTime   = time.Second
	DefaultMemory = 256 << 20
	DefaultStack  = 1000
)

func (l Limits) withDefaults() Limits {
	if l.Time <= 0 {
		l.Time = DefaultTime
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Stack <= 0 {
		l.Stack = DefaultStack
	}
	return l
}

// Library is shared source every script of an engine sees: its top-level
// functions and variables are globals (Mirth's code template libraries).
type Library struct {
	Name   string // where it is written, for errors
	Source string
	Mirth  bool // for each loops and E4X allowed
}

// Options configure an Engine.
type Options struct {
	Limits    Limits
	Libraries []Library
	// Tables are the code tables lookup() reads, by name.
	Tables map[string]map[string]string
	// Log receives the lines scripts log while the broker runs (route
	// test collects them in Input.Log instead). nil drops them: a script
	// may log values from the message, which the broker's log must not
	// carry unless the operator chose so.
	Log func(LogLine)
}

// LogLine is one line a script logged.
type LogLine struct {
	Script string
	Level  string // debug, info, warn, error
	Text   string
}

// Engine compiles scripts and runs them on a pool of sandboxed runtimes.
// One engine serves one loaded config; its zero value is not usable.
type Engine struct {
	limits Limits
	libs   []*goja.Program
	libNms []string
	tables map[string]map[string]string
	log    atomic.Pointer[func(LogLine)]
	pool   chan *runner
	made   atomic.Int64 // runtimes made, for tests: a pool that works makes few
}

// SetLog sends the lines scripts log while the broker runs to f (nil:
// dropped).
func (e *Engine) SetLog(f func(LogLine)) {
	if f == nil {
		e.log.Store(nil)
		return
	}
	e.log.Store(&f)
}

// NewEngine makes an engine, compiling its libraries (a syntax error is an
// *Error in the library).
func NewEngine(o Options) (*Engine, error) {
	e := &Engine{limits: o.Limits.withDefaults(), tables: o.Tables,
		pool: make(chan *runner, 2*runtime.GOMAXPROCS(0))}
	e.SetLog(o.Log)
	for _, lib := range o.Libraries {
		src := lib.Source
		if lib.Mirth {
			var err error
			if src, err = RewriteForEach(src); err != nil {
				return nil, &Error{Script: lib.Name, Reason: "syntax error: " + err.Error()}
			}
		}
		prog, err := goja.Compile(lib.Name, src, false)
		if err != nil {
			s := &Script{name: lib.Name}
			return nil, s.syntaxError(err)
		}
		e.libs = append(e.libs, prog)
		e.libNms = append(e.libNms, lib.Name)
	}
	// Load the libraries once now, so that one that throws when it runs
	// is an error here rather than on every message.
	r, err := e.newRunner()
	if err != nil {
		return nil, err
	}
	e.put(r)
	return e, nil
}

// Limits are the engine's limits, defaults filled in.
func (e *Engine) Limits() Limits { return e.limits }

// Input is one run's message and state.
type Input struct {
	// Message is the message as HL7 v2: a step edits it in place, a
	// condition and an encoder read it.
	Message *hl7.Message
	// Vars are the message's variables: set by steps (channelMap in
	// Mirth), read by later steps, conditions, encoders and templates.
	// Nil: a run that sets one makes the map.
	Vars map[string]string
	// Log, when not nil, collects the lines the script logs (route test).
	Log *[]LogLine
	// Template is the encoder's outbound template (Mirth's tmp), if any.
	Template string
	// Document is what a builder is given as msg: a JSON value or an
	// XML document as a tree (maps, slices, strings, numbers, booleans).
	Document any
}

// Result is what a run returned.
type Result struct {
	Matched bool   // a condition's verdict
	Payload []byte // an encoder's payload
}

// Run runs s on in. A script that throws or hits a limit returns an
// *Error; a panic in the host is recovered as one.
func (s *Script) Run(in *Input) (res Result, err error) {
	e := s.engine
	r := e.get()
	if r == nil {
		return res, &Error{Script: s.name, Reason: "cannot start a script runtime"}
	}
	healthy := false
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Script: s.name, Reason: fmt.Sprintf("the script host panicked (a bug in hl7broker: please report it): %v", p)}
			healthy = false
		}
		r.end()
		if healthy {
			e.put(r)
		}
	}()
	fn, err := r.function(s)
	if err != nil {
		return res, err
	}
	r.begin(in, s)
	v, err := fn(goja.Undefined(), r.args(s, in)...)
	if err != nil {
		// A script that throws leaves its runtime as good as new: keep it
		// (a script that throws on every message would otherwise make a
		// runtime a message). One interrupted or out of stack is dropped.
		var exc *goja.Exception
		var interrupted *goja.InterruptedError
		var overflow *goja.StackOverflowError
		if errors.As(err, &exc) && !errors.As(err, &interrupted) && !errors.As(err, &overflow) {
			if s.mirth {
				r.forgetGlobals()
			}
			healthy = true
		}
		return res, s.runError(err, r)
	}
	if s.mirth {
		r.forgetGlobals()
		if s.kind == Step && in.Message != nil {
			if err := r.mirth.finish(in); err != nil {
				healthy = true
				return res, &Error{Script: s.name, Reason: "the message the script made is not HL7 v2: " + reason(err)}
			}
		}
	}
	healthy = true
	switch s.kind {
	case Condition:
		res.Matched = truthy(v)
	case Encoder:
		res.Payload, err = r.payload(s, v, in)
	case Builder:
		str, ok := v.Export().(string)
		if !ok || strings.TrimSpace(str) == "" {
			return res, &Error{Script: s.name, Reason: "the script returned no message: return the HL7 v2 message's text"}
		}
		res.Payload = []byte(str)
	}
	return res, err
}

func truthy(v goja.Value) bool {
	return v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) && v.ToBoolean()
}

// runError is a run's error as an *Error at the script's position.
func (s *Script) runError(err error, r *runner) error {
	out := &Error{Script: s.name}
	var stack []goja.StackFrame
	var interrupted *goja.InterruptedError
	var overflow *goja.StackOverflowError
	var exc *goja.Exception
	var mine *Error
	switch {
	case errors.As(err, &mine):
		return mine
	case errors.As(err, &interrupted):
		stack = interrupted.Stack()
		switch v := interrupted.Value(); v {
		case ErrTimeLimit:
			out.Reason = fmt.Sprintf("time limit of %s exceeded", s.engine.limits.Time)
		case ErrMemoryLimit:
			out.Reason = fmt.Sprintf("memory limit of %d MiB exceeded", s.engine.limits.Memory>>20)
		default:
			out.Reason = fmt.Sprint(v)
		}
	case errors.As(err, &overflow):
		stack = overflow.Stack()
		out.Reason = fmt.Sprintf("call stack deeper than %d", s.engine.limits.Stack)
	case errors.As(err, &exc):
		stack = exc.Stack()
		out.Reason, out.Detail = describeThrown(exc.Value())
	default:
		out.Reason = "the script failed"
		out.Detail = err.Error()
	}
	for _, f := range stack {
		if f.SrcName() == s.name {
			p := f.Position()
			out.Line, out.Column = s.place(p.Line, p.Column)
			break
		}
	}
	return out
}

// describeThrown names what a script threw (an Error's name, never its
// message, which may quote a value) and, as detail, all of it.
func describeThrown(v goja.Value) (reason, detail string) {
	if v == nil {
		return "the script threw", ""
	}
	detail = v.String()
	if o, ok := v.(*goja.Object); ok {
		if n := o.Get("name"); n != nil && !goja.IsUndefined(n) {
			if msg := o.Get("message"); msg != nil {
				detail = n.String() + ": " + msg.String()
			}
			return "uncaught " + n.String(), detail
		}
		return "the script threw an object", detail
	}
	if t := v.ExportType(); t != nil {
		return "the script threw a " + t.Kind().String() + " value", detail
	}
	return "the script threw " + detail, detail // null or undefined: nothing of the message
}

// get takes a runner from the pool, or makes one.
func (e *Engine) get() *runner {
	select {
	case r := <-e.pool:
		return r
	default:
	}
	r, err := e.newRunner()
	if err != nil {
		return nil
	}
	return r
}

func (e *Engine) put(r *runner) {
	select {
	case e.pool <- r:
	default:
	}
}

// heapBytes is the heap's size now: live objects and garbage not yet
// swept.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// slowAfter is when a run starts being watched for its memory: runs
// shorter than this (nearly all) cost one timer.
const slowAfter = 5 * time.Millisecond

// watch interrupts r's run number gen when it outlasts the time limit or
// the heap grows past the memory limit while it runs.
func (r *runner) watch(gen uint64, began time.Time) {
	lim := r.e.limits
	low := heapBytes()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		r.mu.Lock()
		if r.gen != gen {
			r.mu.Unlock()
			return
		}
		now := heapBytes()
		low = min(low, now) // a collection in between: grow from there
		var why error
		switch {
		case time.Since(began) > lim.Time:
			why = ErrTimeLimit
		case now > low && int64(now-low) > lim.Memory:
			why = ErrMemoryLimit
		}
		if why != nil {
			r.vm.Interrupt(why)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}
