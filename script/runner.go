package script

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/hl7broker/hl7broker/hl7"
)

// runner is one sandboxed runtime with the script API installed. A runner
// runs one script at a time; the engine's pool lends it out.
type runner struct {
	e   *Engine
	vm  *goja.Runtime
	fns map[*goja.Program]goja.Callable // each script's function, made once per runtime

	mu      sync.Mutex // guards gen, began, running against the watcher
	gen     uint64     // which run is in progress
	began   time.Time
	running bool
	timer   *time.Timer // fires slowAfter into a run: start watching it

	globals map[string]bool // the global names after setup (Mirth scripts leave more)

	// The run in progress.
	in     *Input
	script *Script
	// The native API's objects, made once and pointed at the run's input.
	msg, vars, log *goja.Object
	segPaths       map[segPathKey]hl7.Path       // segments' paths by segment name and argument, parsed once
	segPool        []*segmentObject              // msg.segments' objects made so far, reused run after run
	segUsed        int                           // how many of segPool this run has handed out
	segList        []any                         // msg.segments' list before it is an array, reused
	shape          uint64                        // changes when a run starts and when a script adds or removes segments (see segmentObject.at)
	values         [recentValues]recentValue     // this run's latest field values (see str)
	nextValue      int                           // where in values str keeps the next
	text           []byte                        // this run's field values' bytes, which their strings share (see str)
	short          [utf8.RuneSelf + 1]goja.Value // each ASCII character, and "" last: made once per runtime
	argv           [3]goja.Value                 // a script's arguments, but a Mirth script's
	paths          map[string]hl7.Path           // paths scripts name, parsed once
	recent         [recentPaths]recentPath       // the paths named lately, found without hashing (see path)
	mirth          *mirthScope
}

func (e *Engine) newRunner() (*runner, error) {
	e.made.Add(1)
	r := &runner{e: e, vm: goja.New(), fns: map[*goja.Program]goja.Callable{}}
	r.vm.SetMaxCallStackSize(e.limits.Stack)
	if err := sandbox(r.vm); err != nil {
		return nil, err
	}
	r.installHelpers()
	r.msg = r.nativeMessage()
	r.segPaths = map[segPathKey]hl7.Path{}
	for c := range utf8.RuneSelf {
		r.short[c] = r.vm.ToValue(string(rune(c)))
	}
	r.short[utf8.RuneSelf] = r.vm.ToValue("")
	r.paths = map[string]hl7.Path{}
	r.vars = r.vm.NewDynamicObject(&varsObject{r: r})
	r.log = r.logger()
	r.mirth = r.newMirthScope()
	for i, lib := range e.libs {
		if _, err := r.vm.RunProgram(lib); err != nil {
			s := &Script{name: e.libNms[i], engine: e}
			return nil, s.runError(err, r)
		}
	}
	r.globals = map[string]bool{}
	for _, k := range r.vm.GlobalObject().Keys() {
		r.globals[k] = true
	}
	r.timer = time.AfterFunc(time.Hour, r.slow)
	r.timer.Stop()
	return r, nil
}

// function is s's function in this runtime.
func (r *runner) function(s *Script) (goja.Callable, error) {
	if fn, ok := r.fns[s.prog]; ok {
		return fn, nil
	}
	v, err := r.vm.RunProgram(s.prog)
	if err != nil {
		return nil, s.runError(err, r)
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return nil, &Error{Script: s.name, Reason: "the script did not compile to a function"}
	}
	if len(r.fns) > 4096 {
		clear(r.fns) // scripts of configs since reloaded
	}
	r.fns[s.prog] = fn
	return fn, nil
}

// begin marks a run of s on in as in progress and arms its watch.
func (r *runner) begin(in *Input, s *Script) {
	r.in, r.script = in, s
	r.shape++ // no segment object of an earlier run reads in place
	r.mu.Lock()
	r.gen++
	r.began = time.Now()
	r.running = true
	r.mu.Unlock()
	r.timer.Reset(slowAfter)
}

// end ends the run: no interrupt meant for it can reach the next one.
func (r *runner) end() {
	r.timer.Stop()
	r.mu.Lock()
	r.gen++
	r.running = false
	r.mu.Unlock()
	r.vm.ClearInterrupt()
	r.in, r.script = nil, nil
	r.endSegments()
	r.values, r.nextValue, r.text = [recentValues]recentValue{}, 0, nil // no value of this message outlives its run
	r.mirth.reset()
}

// slow runs when a run has lasted slowAfter: it watches the run until it
// ends or breaks a limit.
func (r *runner) slow() {
	r.mu.Lock()
	gen, began, running := r.gen, r.began, r.running
	r.mu.Unlock()
	if running {
		r.watch(gen, began)
	}
}

// args are the values a script's parameters (params) receive.
func (r *runner) args(s *Script, in *Input) []goja.Value {
	if s.kind == Builder {
		r.argv = [3]goja.Value{r.vm.ToValue(in.Document), r.vars, r.log}
		return r.argv[:]
	}
	if !s.mirth {
		r.argv = [3]goja.Value{r.msg, r.vars, r.log}
		return r.argv[:]
	}
	return r.mirth.args(in)
}

// payload is an encoder's result as bytes: a string as it is, anything
// else as JSON (an E4X value as its text, as in Mirth).
func (r *runner) payload(s *Script, v goja.Value, in *Input) ([]byte, error) {
	if s.mirth {
		if p, ok := r.mirth.payload(v, in); ok {
			return p, nil
		}
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, &Error{Script: s.name, Reason: "the encoder returned nothing: return the payload to send"}
	}
	if str, ok := v.Export().(string); ok {
		return []byte(str), nil
	}
	j, err := r.vm.RunString("JSON.stringify")
	if err != nil {
		return nil, err
	}
	stringify, _ := goja.AssertFunction(j)
	out, err := stringify(goja.Undefined(), v)
	if err != nil {
		return nil, s.runError(err, r)
	}
	return []byte(out.String()), nil
}

// forgetGlobals deletes the globals a sloppy (Mirth) script created by
// assigning to undeclared names, so that nothing of one message is left
// for the next.
func (r *runner) forgetGlobals() {
	g := r.vm.GlobalObject()
	for _, k := range g.Keys() {
		if !r.globals[k] {
			_ = g.Delete(k)
		}
	}
}

// sandbox takes from vm what a guest must not have: eval and every way to
// compile code from a string. goja has no files, network, timers or
// modules to begin with.
func sandbox(vm *goja.Runtime) error {
	_, err := vm.RunString(`(function(){
	var blocked = function(){ throw new EvalError("compiling code from a string is not allowed in a script"); };
	blocked.prototype = Function.prototype;
	var protos = [Function.prototype];
	try { protos.push(Object.getPrototypeOf(function*(){})); } catch (e) {}
	try { protos.push(Object.getPrototypeOf(async function(){})); } catch (e) {}
	protos.forEach(function(p){ Object.defineProperty(p, "constructor", {value: blocked, writable: false, configurable: false}); });
	Object.defineProperty(globalThis, "Function", {value: blocked, writable: false, configurable: false});
	delete globalThis.eval;
	// Natives that allocate in one step are bounded, since an interrupt
	// only lands between script instructions.
	var limit = 64 << 20;
	function bounded(proto, name, size) {
		var f = proto[name];
		Object.defineProperty(proto, name, {value: function(){
			if (size(this, arguments) > limit) throw new RangeError(name + " would make a value larger than 64 MiB");
			return f.apply(this, arguments);
		}, writable: false, configurable: false});
	}
	bounded(String.prototype, "repeat", function(s, a){ return String(s).length * Number(a[0]); });
	bounded(String.prototype, "padStart", function(s, a){ return Number(a[0]); });
	bounded(String.prototype, "padEnd", function(s, a){ return Number(a[0]); });
	bounded(Array.prototype, "fill", function(s, a){ return s.length; });
	bounded(Array.prototype, "join", function(s, a){ return s.length; });
	var A = Array;
	var SafeArray = function(){
		if (arguments.length === 1 && typeof arguments[0] === "number" && arguments[0] > limit) throw new RangeError("an array of more than 64 Mi elements is not allowed");
		return A.apply(this, arguments);
	};
	SafeArray.prototype = A.prototype;
	Object.getOwnPropertyNames(A).forEach(function(k){ if (!(k in SafeArray)) SafeArray[k] = A[k]; });
	Object.defineProperty(A.prototype, "constructor", {value: SafeArray, writable: false, configurable: false});
	globalThis.Array = SafeArray;
})();`)
	return err
}
