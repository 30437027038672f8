package script

import (
	_ "embed"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/hl7broker/hl7broker/hl7"
)

// mirthScope is what a Mirth script finds around it (Mirth's
// JavaScriptScopeUtil): msg and tmp as E4X values, the maps and their $
// shorthands, logger, and the Java helpers scripts use most (prelude.js).
type mirthScope struct {
	r       *runner
	methods map[string]goja.Value // E4X methods
	msg     *xdoc
	tmp     *xdoc
	tmpJSON bool // tmp is a JSON template: the result is JSON.stringify(tmp)
	tmpVal  goja.Value
	names   nameCache // element names, kept across runs
	// responseMap and connectorMap live for one run.
	response, connector map[string]string
}

//go:embed prelude.js
var prelude string

var preludeProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("mirth-prelude.js", prelude, false)
})

// globalMaps are Mirth's globalMap and globalChannelMap: shared by every
// script of the process, kept in memory (not across restarts).
var globalMaps = struct {
	sync.Mutex
	m map[string]map[string]string
}{m: map[string]map[string]string{}}

func (r *runner) newMirthScope() *mirthScope {
	m := &mirthScope{r: r}
	m.methods = m.e4xMethods()
	vm := r.vm
	g := vm.GlobalObject()
	host := vm.NewObject()
	// Maps: get, put, remove, containsKey, keys, over Go maps.
	mapOf := func(name string) map[string]string {
		switch name {
		case "channel":
			if r.in.Vars == nil {
				r.in.Vars = map[string]string{}
			}
			return r.in.Vars
		case "response":
			if m.response == nil {
				m.response = map[string]string{}
			}
			return m.response
		case "connector":
			if m.connector == nil {
				m.connector = map[string]string{}
			}
			return m.connector
		case "configuration":
			return r.e.tables["configuration"]
		}
		return nil
	}
	global := func(name string, f func(map[string]string) goja.Value) goja.Value {
		globalMaps.Lock()
		defer globalMaps.Unlock()
		if globalMaps.m[name] == nil {
			globalMaps.m[name] = map[string]string{}
		}
		return f(globalMaps.m[name])
	}
	with := func(name string, f func(map[string]string) goja.Value) goja.Value {
		if name == "global" || name == "globalChannel" {
			return global(name, f)
		}
		mm := mapOf(name)
		if mm == nil {
			mm = map[string]string{}
		}
		return f(mm)
	}
	_ = host.Set("mapGet", func(c goja.FunctionCall) goja.Value {
		return with(c.Argument(0).String(), func(mm map[string]string) goja.Value {
			if v, ok := mm[text(c.Argument(1))]; ok {
				return vm.ToValue(v)
			}
			return goja.Undefined()
		})
	})
	_ = host.Set("mapPut", func(c goja.FunctionCall) goja.Value {
		name := c.Argument(0).String()
		if name == "configuration" || name == "source" {
			panic(vm.NewTypeError(name + "Map is read-only"))
		}
		return with(name, func(mm map[string]string) goja.Value {
			k := text(c.Argument(1))
			old, had := mm[k]
			mm[k] = text(c.Argument(2))
			if had {
				return vm.ToValue(old)
			}
			return goja.Undefined()
		})
	})
	_ = host.Set("mapRemove", func(c goja.FunctionCall) goja.Value {
		return with(c.Argument(0).String(), func(mm map[string]string) goja.Value {
			k := text(c.Argument(1))
			old, had := mm[k]
			delete(mm, k)
			if had {
				return vm.ToValue(old)
			}
			return goja.Undefined()
		})
	})
	_ = host.Set("mapKeys", func(c goja.FunctionCall) goja.Value {
		return with(c.Argument(0).String(), func(mm map[string]string) goja.Value {
			keys := make([]any, 0, len(mm))
			for k := range mm {
				keys = append(keys, k)
			}
			return vm.NewArray(keys...)
		})
	})
	_ = host.Set("log", func(c goja.FunctionCall) goja.Value {
		r.emit(c.Argument(0).String(), text(c.Argument(1)))
		return goja.Undefined()
	})
	_ = host.Set("xml", func(c goja.FunctionCall) goja.Value {
		s := strings.TrimSpace(text(c.Argument(0)))
		if s == "" {
			return m.list(&xdoc{}, nil, nil, "")
		}
		nodes, err := parseXML(s)
		if err != nil {
			panic(vm.NewTypeError("new XML: " + err.Error()))
		}
		return m.list(&xdoc{}, nodes, nil, "")
	})
	_ = host.Set("each", func(c goja.FunctionCall) goja.Value {
		v := c.Argument(0)
		if l, ok := asList(v); ok {
			out := make([]any, len(l.items))
			for i := range l.items {
				out[i] = m.only(l.doc, l.items[i], nil, "")
			}
			return vm.NewArray(out...)
		}
		return goja.Undefined() // the prelude handles arrays and objects
	})
	_ = host.Set("formatTime", func(c goja.FunctionCall) goja.Value {
		ms := c.Argument(1).ToInteger()
		return vm.ToValue(time.UnixMilli(ms).Format(hl7.Layout(text(c.Argument(0)))))
	})
	_ = host.Set("parseTime", func(c goja.FunctionCall) goja.Value {
		t, err := time.ParseInLocation(hl7.Layout(text(c.Argument(0))), text(c.Argument(1)), time.Local)
		if err != nil {
			panic(vm.NewTypeError("DateUtil: the value is not a date in the pattern given"))
		}
		return vm.ToValue(t.UnixMilli())
	})
	_ = host.Set("isXML", func(c goja.FunctionCall) goja.Value {
		_, ok := asList(c.Argument(0))
		return vm.ToValue(ok)
	})
	_ = g.Set("__host", host)
	if _, err := vm.RunProgram(preludeProgram()); err != nil {
		panic("script: the Mirth prelude does not run: " + err.Error())
	}
	_ = g.Delete("__host")
	return m
}

// args are a Mirth script's msg and tmp (and vars and log, as for any
// script).
func (m *mirthScope) args(in *Input) []goja.Value {
	var msg goja.Value = goja.Undefined()
	if in.Message != nil {
		m.msg = &xdoc{root: fromER7(in.Message, &m.names)}
		msg = m.list(m.msg, []*xnode{m.msg.root}, nil, "")
	}
	m.tmpVal = goja.Undefined()
	if t := strings.TrimSpace(in.Template); t != "" {
		switch {
		case t[0] == '{' || t[0] == '[':
			parse, _ := goja.AssertFunction(m.r.vm.Get("JSON").ToObject(m.r.vm).Get("parse"))
			if v, err := parse(goja.Undefined(), m.r.vm.ToValue(t)); err == nil {
				m.tmpJSON, m.tmpVal = true, v
			}
		case t[0] == '<':
			if nodes, err := parseXML(t); err == nil {
				m.tmp = &xdoc{root: &xnode{name: "#document"}}
				for _, n := range nodes {
					m.tmp.root.add(n)
				}
				m.tmpVal = m.list(m.tmp, nodes, nil, "")
			}
		default:
			if tm, err := hl7.Parse([]byte(t)); err == nil {
				m.tmp = &xdoc{root: fromER7(tm, &m.names), dirty: true}
				m.tmpVal = m.list(m.tmp, []*xnode{m.tmp.root}, nil, "")
			} else {
				m.tmpVal = m.r.vm.ToValue(in.Template)
			}
		}
	}
	return []goja.Value{msg, m.tmpVal, m.r.vars, m.r.log}
}

// finish writes back what a Mirth step changed: tmp when there is an HL7
// template, else msg if the script changed it.
func (m *mirthScope) finish(in *Input) error {
	var out []byte
	switch {
	case m.tmp != nil && m.tmp.root.name == "HL7Message":
		out = toER7(m.tmp.root)
	case m.msg != nil && m.msg.dirty:
		out = toER7(m.msg.root)
	default:
		return nil
	}
	next, err := hl7.Parse(out)
	if err != nil {
		return err
	}
	*in.Message = *next
	return nil
}

// payload is a Mirth encoder's result: what it returned, or else tmp (or
// msg) serialized as its data type is.
func (m *mirthScope) payload(v goja.Value, in *Input) ([]byte, bool) {
	if v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
		if l, ok := asList(v); ok {
			return m.serialize(l.items), true
		}
		return nil, false
	}
	switch {
	case m.tmpJSON:
		stringify, _ := goja.AssertFunction(m.r.vm.Get("JSON").ToObject(m.r.vm).Get("stringify"))
		if out, err := stringify(goja.Undefined(), m.tmpVal); err == nil {
			return []byte(out.String()), true
		}
	case m.tmp != nil && m.tmp.root.name == "HL7Message":
		return toER7(m.tmp.root), true
	case m.tmp != nil:
		return m.serialize(m.tmp.root.kids), true
	case m.msg != nil && m.msg.dirty:
		return m.serialize([]*xnode{m.msg.root}), true
	case in.Message != nil: // unchanged: the bytes as they came
		return append([]byte(nil), in.Message.Bytes()...), true
	}
	return nil, false
}

func (m *mirthScope) serialize(items []*xnode) []byte {
	if len(items) == 1 && items[0].name == "HL7Message" {
		return toER7(items[0])
	}
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(it.toXMLString())
	}
	return []byte(b.String())
}

func (m *mirthScope) reset() {
	m.msg, m.tmp, m.tmpJSON, m.tmpVal = nil, nil, false, nil
	m.response, m.connector = nil, nil
}
