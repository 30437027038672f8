package script

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/dop251/goja"

	"github.com/hl7broker/hl7broker/hl7"
)

// The script API (docs/scripts.md): msg, vars and log as parameters, and
// global helpers. Each is made once per runtime and reads the run in
// progress (r.in), so a run allocates no API objects.

// nativeMessage is msg: read and write by path, segments, the text.
func (r *runner) nativeMessage() *goja.Object {
	vm := r.vm
	o := vm.NewObject()
	m := func() *hl7.Message {
		if r.in == nil || r.in.Message == nil {
			panic(vm.NewTypeError("there is no message here"))
		}
		return r.in.Message
	}
	fn := func(name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }
	// edit is fn for a method that changes the message, which a condition
	// may not: the message it reads is shared with every other route.
	edit := func(name string, f func(goja.FunctionCall) goja.Value) {
		fn(name, func(c goja.FunctionCall) goja.Value {
			if r.script != nil && r.script.kind == Condition {
				panic(vm.NewTypeError("msg." + name + ": a condition cannot change the message"))
			}
			return f(c)
		})
	}
	fn("get", func(c goja.FunctionCall) goja.Value {
		return r.str(m().Value(r.path("msg.get", c.Argument(0))))
	})
	edit("set", func(c goja.FunctionCall) goja.Value {
		r.check("msg.set", m().Set(r.path("msg.set", c.Argument(0)), text(c.Argument(1))))
		return goja.Undefined()
	})
	edit("clear", func(c goja.FunctionCall) goja.Value {
		r.check("msg.clear", m().Clear(r.path("msg.clear", c.Argument(0))))
		return goja.Undefined()
	})
	edit("delete", func(c goja.FunctionCall) goja.Value {
		r.shape++ // a segment path removes the segment
		r.check("msg.delete", m().Delete(r.path("msg.delete", c.Argument(0))))
		return goja.Undefined()
	})
	fn("has", func(c goja.FunctionCall) goja.Value {
		return vm.ToValue(len(m().Value(r.path("msg.has", c.Argument(0)))) > 0)
	})
	fn("count", func(c goja.FunctionCall) goja.Value {
		return vm.ToValue(m().Count(r.path("msg.count", c.Argument(0))))
	})
	fn("all", func(c goja.FunctionCall) goja.Value {
		p := r.path("msg.all", c.Argument(0))
		var out []any
		for _, v := range m().Values(p) {
			out = append(out, string(v))
		}
		return vm.NewArray(out...)
	})
	fn("segments", func(c goja.FunctionCall) goja.Value {
		name := ""
		if !goja.IsUndefined(c.Argument(0)) {
			name = c.Argument(0).String()
		}
		out := r.segList[:0] // of goja.Value; NewArray copies it
		defer func() { clear(out); r.segList = out[:0] }()
		if name != "" {
			occ := 0
			for seg := range m().SegmentsNamed(name) {
				occ++
				out = append(out, r.segment(seg, name, occ))
			}
			return vm.NewArray(out...)
		}
		occ := map[string]int{}
		for seg := range m().Segments() {
			n := seg.Name()
			occ[n]++
			out = append(out, r.segment(seg, n, occ[n]))
		}
		return vm.NewArray(out...)
	})
	edit("addSegment", func(c goja.FunctionCall) goja.Value {
		r.shape++
		seg := []byte(text(c.Argument(0)))
		msg := m()
		at := msg.SegmentCount()
		if after := c.Argument(1); !goja.IsUndefined(after) {
			found := false
			for s := range msg.SegmentsNamed(after.String()) {
				at, found = s.Index()+1, true
			}
			if !found {
				panic(vm.NewTypeError(fmt.Sprintf("msg.addSegment: no %s segment to add after", after.String())))
			}
		}
		r.check("msg.addSegment", msg.InsertSegment(at, seg))
		return goja.Undefined()
	})
	fn("text", func(goja.FunctionCall) goja.Value {
		return vm.ToValue(strings.TrimRight(string(m().Bytes()), "\r\n"))
	})
	edit("setText", func(c goja.FunctionCall) goja.Value {
		r.shape++
		data := []byte(text(c.Argument(0)))
		next, err := hl7.Parse(data)
		r.check("msg.setText", err)
		*m() = *next
		return goja.Undefined()
	})
	return o
}

// segment is one segment for msg.segments: its name, its index among
// segments of that name, and get and set by a path within it ("5.1" or
// "OBX-5.1"). Segment objects are pooled: a run hands out fresh ones
// (none is shared within a run), and the next run reuses them, so a loop
// over segments allocates nothing once a runtime has served a message.
// An object kept past its run (in a global, say) reads whatever the pool
// makes it next, always of the message then running, never an earlier one.
func (r *runner) segment(at hl7.Segment, name string, occ int) goja.Value {
	if r.segUsed == len(r.segPool) {
		seg := &segmentObject{r: r}
		seg.get, seg.set = r.segmentMethods(seg)
		r.segPool = append(r.segPool, seg)
	}
	seg := r.segPool[r.segUsed]
	r.segUsed++
	seg.name, seg.occ = name, occ
	seg.at, seg.shape = at, r.shape
	if seg.obj == nil {
		seg.obj = r.vm.NewDynamicObject(seg)
	}
	return seg.obj
}

// maxPooledSegments bounds the segment objects a runtime keeps between
// runs (a message of many segments makes more, dropped after its run).
const maxPooledSegments = 256

func (r *runner) endSegments() {
	clear(r.segPool[min(len(r.segPool), maxPooledSegments):])
	r.segPool = r.segPool[:min(len(r.segPool), maxPooledSegments)]
	r.segUsed = 0
}

// maxInterned is the longest field value str makes once per run.
const maxInterned = 32

// textChunk is how many bytes of field values str copies into one
// allocation.
const textChunk = 256

// recentValues is how many of the run's latest field values str keeps.
const recentValues = 8

// recentValue is a field value str made lately in this run.
type recentValue struct {
	s string
	v goja.Value
}

// str is a field's value as a JavaScript string. Values repeat within a
// message (flags, units, codes in a loop over OBX): one equal to one of
// the run's latest few is that one again, found by comparing, not
// hashing. The bytes of those str makes are copied into chunks of the
// run's own (r.text), not one allocation each: a chunk is written once
// and never changed, so the strings may share it. The run's end forgets
// them all.
func (r *runner) str(b []byte) goja.Value {
	switch {
	case len(b) == 0:
		return r.short[utf8.RuneSelf]
	case len(b) == 1 && b[0] < utf8.RuneSelf:
		return r.short[b[0]] // made with the runtime
	case len(b) > maxInterned:
		return r.vm.ToValue(string(b))
	}
	for i := range r.values {
		if e := &r.values[i]; len(e.s) == len(b) && e.s == string(b) {
			return e.v
		}
	}
	if cap(r.text)-len(r.text) < len(b) {
		r.text = make([]byte, 0, textChunk)
	}
	at := len(r.text)
	r.text = append(r.text, b...)
	s := unsafe.String(&r.text[at], len(b))
	v := r.vm.ToValue(s)
	r.values[r.nextValue] = recentValue{s, v}
	r.nextValue = (r.nextValue + 1) % recentValues
	return v
}

type segmentObject struct {
	r        *runner
	obj      *goja.Object
	get, set goja.Value // its methods, made with it
	name     string
	occ      int
	paths    []segPath   // the paths its get and set were given, kept run after run (see segmentMethods)
	at       hl7.Segment // the segment itself, while the message's segments are as they were (shape)
	shape    uint64      // runner.shape when at was taken
}

// segPath is a path a segment's get or set was given (arg), parsed for a
// segment named seg.
type segPath struct {
	seg, arg string
	p        hl7.Path
}

// maxSegPaths bounds a segment object's own paths; more go to the
// runner's map.
const maxSegPaths = 8

func (s *segmentObject) Get(key string) goja.Value {
	switch key {
	case "name":
		return s.r.vm.ToValue(s.name)
	case "index":
		return s.r.vm.ToValue(s.occ)
	case "get":
		return s.get
	case "set":
		return s.set
	}
	return nil
}

func (s *segmentObject) Set(string, goja.Value) bool { return false }
func (s *segmentObject) Has(key string) bool         { return s.Get(key) != nil }
func (s *segmentObject) Delete(string) bool          { return false }
func (s *segmentObject) Keys() []string              { return []string{"name", "index"} }

// segPathKey is a path a segment's get or set was given, by the
// segment's name ("5.1" of OBX).
type segPathKey struct{ seg, arg string }

// segmentMethods makes a segment's get and set, once per pooled segment.
func (r *runner) segmentMethods(seg *segmentObject) (get, set goja.Value) {
	vm := r.vm
	at := func(c goja.FunctionCall) hl7.Path {
		s := c.Argument(0).String()
		// A loop asks the same few paths of the segment each pooled
		// object stands for, run after run: compared in place, they cost
		// less than a lookup in the map.
		for i := range seg.paths {
			if sp := &seg.paths[i]; sp.arg == s && sp.seg == seg.name {
				p := sp.p
				p.Occurrence = seg.occ
				return p
			}
		}
		k := segPathKey{seg.name, s}
		p, cached := r.segPaths[k]
		if !cached {
			full := s
			if !strings.HasPrefix(s, seg.name+"-") {
				full = seg.name + "-" + s
			}
			p = r.path("segment.get", vm.ToValue(full))
			if len(r.segPaths) < 4096 {
				r.segPaths[k] = p
			}
		}
		if len(seg.paths) < maxSegPaths {
			seg.paths = append(seg.paths, segPath{seg.name, s, p})
		}
		p.Occurrence = seg.occ
		return p
	}
	get = vm.ToValue(func(c goja.FunctionCall) goja.Value {
		if seg.shape == r.shape { // no segment added or removed since: read it in place
			return r.str(seg.at.Value(at(c)))
		}
		return r.str(r.in.Message.Value(at(c)))
	})
	set = vm.ToValue(func(c goja.FunctionCall) goja.Value {
		if r.script != nil && r.script.kind == Condition {
			panic(vm.NewTypeError("segment.set: a condition cannot change the message"))
		}
		r.check("segment.set", r.in.Message.Set(at(c), text(c.Argument(1))))
		return goja.Undefined()
	})
	return get, set
}

// path parses a script's path argument, throwing a TypeError for a bad one
// (the path is the script's own text, never a value).
func (r *runner) path(where string, v goja.Value) hl7.Path {
	s := v.String()
	slot := &r.recent[recentSlot(s)]
	if len(s) > 0 && len(s) == len(slot.s) && unsafe.StringData(s) == unsafe.StringData(slot.s) {
		return slot.p
	}
	p, ok := r.paths[s]
	if !ok {
		var err error
		if p, err = hl7.ParsePath(s); err != nil {
			panic(r.vm.NewTypeError(fmt.Sprintf("%s: %q is not a path such as PID-5.1: %s", where, s, reason(err))))
		}
		if len(r.paths) < 4096 { // a script's paths are few; a runaway one does not grow this
			r.paths[s] = p
		}
	}
	*slot = recentPath{s, p}
	return p
}

// recentPath is a path a script named lately, by its very string.
type recentPath struct {
	s string
	p hl7.Path
}

// recentSlot is where s stands in runner.recent: by where its bytes are.
// A path a script writes as a literal is the same string, at the same
// place, at every call, so a slot that holds it (and, holding it, keeps
// its bytes where they are) answers without hashing it.
func recentSlot(s string) int {
	return int((uintptr(unsafe.Pointer(unsafe.StringData(s)))>>3 ^ uintptr(len(s))) % recentPaths)
}

// recentPaths is how many slots runner.recent has.
const recentPaths = 64

// check throws err (from an edit) as a TypeError.
func (r *runner) check(where string, err error) {
	if err != nil {
		panic(r.vm.NewTypeError(where + ": " + reason(err)))
	}
}

func reason(err error) string {
	if pe, ok := err.(*hl7.PathError); ok {
		return pe.Reason
	}
	return err.Error()
}

// text is a value as a script means it: undefined and null are "".
func text(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return ""
	}
	return v.String()
}

// varsObject is vars: the run's variables, as strings.
type varsObject struct{ r *runner }

func (v *varsObject) Get(key string) goja.Value {
	if s, ok := v.r.in.Vars[key]; ok {
		return v.r.vm.ToValue(s)
	}
	return nil
}

func (v *varsObject) Set(key string, val goja.Value) bool {
	in := v.r.in
	if in.Vars == nil {
		in.Vars = make(map[string]string, 8)
	}
	in.Vars[key] = text(val)
	return true
}

func (v *varsObject) Has(key string) bool { _, ok := v.r.in.Vars[key]; return ok }

func (v *varsObject) Delete(key string) bool { delete(v.r.in.Vars, key); return true }

func (v *varsObject) Keys() []string {
	keys := make([]string, 0, len(v.r.in.Vars))
	for k := range v.r.in.Vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// logger is log: debug, info, warn, error.
func (r *runner) logger() *goja.Object {
	o := r.vm.NewObject()
	for _, level := range []string{"debug", "info", "warn", "error"} {
		_ = o.Set(level, func(c goja.FunctionCall) goja.Value {
			parts := make([]string, len(c.Arguments))
			for i, a := range c.Arguments {
				parts[i] = text(a)
			}
			r.emit(level, strings.Join(parts, " "))
			return goja.Undefined()
		})
	}
	return o
}

// emit hands a logged line to the run's collector or the engine's sink.
func (r *runner) emit(level, line string) {
	if r.in == nil || r.script == nil {
		return
	}
	l := LogLine{Script: r.script.name, Level: level, Text: line}
	switch {
	case r.in.Log != nil:
		*r.in.Log = append(*r.in.Log, l)
	default:
		if f := r.e.log.Load(); f != nil {
			(*f)(l)
		}
	}
}

// installHelpers sets the global helpers: uuid, now, formatDate, lookup.
func (r *runner) installHelpers() {
	vm := r.vm
	g := vm.GlobalObject()
	_ = g.Set("uuid", func(goja.FunctionCall) goja.Value { return vm.ToValue(newUUID()) })
	_ = g.Set("now", func(c goja.FunctionCall) goja.Value {
		return vm.ToValue(time.Now().Format(layoutArg(c.Argument(0))))
	})
	_ = g.Set("formatDate", func(c goja.FunctionCall) goja.Value {
		s := text(c.Argument(0))
		to := layoutArg(c.Argument(1))
		var t time.Time
		var err error
		if from := c.Argument(2); goja.IsUndefined(from) {
			t, err = hl7.ParseTime(s)
		} else {
			t, err = time.Parse(hl7.Layout(from.String()), s)
		}
		if err != nil {
			panic(vm.NewTypeError("formatDate: the value is not a date in the expected format"))
		}
		return vm.ToValue(t.Format(to))
	})
	_ = g.Set("lookup", func(c goja.FunctionCall) goja.Value {
		name := text(c.Argument(0))
		table, ok := r.e.tables[name]
		if !ok {
			panic(vm.NewTypeError(fmt.Sprintf("lookup: no table is named %q", name)))
		}
		if v, ok := table[text(c.Argument(1))]; ok {
			return vm.ToValue(v)
		}
		if len(c.Arguments) > 2 {
			return c.Argument(2)
		}
		return goja.Null()
	})
}

// layoutArg is a date pattern argument (yyyyMMddHHmmss by default) as a
// Go layout.
func layoutArg(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) || v.String() == "" || strings.EqualFold(v.String(), "hl7") {
		return "20060102150405"
	}
	return hl7.Layout(v.String())
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
