package script

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dop251/goja"
)

// xdoc is one XML tree a Mirth script sees (msg or tmp) and whether the
// script changed it.
type xdoc struct {
	root  *xnode
	dirty bool
}

// xlist is an E4X value: a list of elements (a single element is a list of
// one, as E4X treats them alike). An empty list remembers where it was
// looked for (base and name), so that assigning to it creates the
// element, as E4X does: msg['ZPI']['ZPI.1'] = 'x'.
type xlist struct {
	m     *mirthScope
	doc   *xdoc
	items []*xnode
	base  *xlist
	name  string
	one   [1]*xnode // items, when it is one element (see only)
}

func (m *mirthScope) list(doc *xdoc, items []*xnode, base *xlist, name string) goja.Value {
	return m.r.vm.NewDynamicObject(&xlist{m: m, doc: doc, items: items, base: base, name: name})
}

// only is list of the one element n, held in the list itself: most lists
// a script makes are one field of one segment, and need no slice of their
// own. (Capped at one: an append to items copies.)
func (m *mirthScope) only(doc *xdoc, n *xnode, base *xlist, name string) goja.Value {
	l := &xlist{m: m, doc: doc, base: base, name: name}
	l.one[0] = n
	l.items = l.one[:1:1]
	return m.r.vm.NewDynamicObject(l)
}

func index(key string) (int, bool) {
	if key == "" || key[0] < '0' || key[0] > '9' {
		return 0, false
	}
	i, err := strconv.Atoi(key)
	return i, err == nil
}

func (l *xlist) Get(key string) goja.Value {
	if i, ok := index(key); ok {
		if i < len(l.items) {
			return l.m.only(l.doc, l.items[i], nil, "")
		}
		return l.m.list(l.doc, nil, l.base, l.name)
	}
	if f, ok := l.m.methods[key]; ok {
		return f
	}
	var first *xnode
	var kids []*xnode // when more than one
	for _, it := range l.items {
		for _, k := range it.kids {
			switch {
			case key != "*" && k.name != key:
			case first == nil:
				first = k
			case kids == nil:
				kids = []*xnode{first, k}
			default:
				kids = append(kids, k)
			}
		}
	}
	if first != nil && kids == nil {
		return l.m.only(l.doc, first, l, key)
	}
	return l.m.list(l.doc, kids, l, key)
}

func (l *xlist) Has(key string) bool {
	if i, ok := index(key); ok {
		return i < len(l.items)
	}
	if _, ok := l.m.methods[key]; ok {
		return true
	}
	for _, it := range l.items {
		for _, k := range it.kids {
			if k.name == key {
				return true
			}
		}
	}
	return false
}

func (l *xlist) Keys() []string {
	keys := make([]string, len(l.items))
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	return keys
}

func (l *xlist) Set(key string, val goja.Value) bool {
	l.doc.dirty = true
	if i, ok := index(key); ok {
		if i < len(l.items) {
			l.assign(l.items[i], val)
			return true
		}
		// One past the end: a new element of the list's name, after its
		// last (msg['OBX'][n] = ...).
		parent := l.parentForNew()
		if parent == nil {
			return false
		}
		n := &xnode{name: l.name}
		if len(l.items) > 0 {
			last := l.items[len(l.items)-1]
			at := last.index() + 1
			n.parent = last.parent
			last.parent.kids = append(last.parent.kids[:at], append([]*xnode{n}, last.parent.kids[at:]...)...)
		} else {
			parent.insertOrdered(n)
		}
		l.items = append(l.items, n)
		l.assign(n, val)
		return true
	}
	target := l.resolveOne()
	if target == nil {
		return false
	}
	var first *xnode
	for j := 0; j < len(target.kids); j++ {
		k := target.kids[j]
		if k.name != key {
			continue
		}
		if first == nil {
			first = k
			continue
		}
		k.remove() // E4X: assigning to a name replaces all its elements by one
		j--
	}
	if first == nil {
		first = target.insertOrdered(&xnode{name: key})
	}
	target.text = ""
	l.assign(first, val)
	return true
}

// parentForNew is the element a new element of this list goes into.
func (l *xlist) parentForNew() *xnode {
	if len(l.items) > 0 {
		return l.items[0].parent
	}
	if l.base == nil {
		return nil
	}
	return l.base.resolveOne()
}

// resolveOne is the one element an assignment through l changes, created
// (with its missing ancestors) when l is empty.
func (l *xlist) resolveOne() *xnode {
	switch len(l.items) {
	case 1:
		return l.items[0]
	case 0:
		if l.base == nil {
			panic(l.m.r.vm.NewTypeError("cannot assign to an empty XML list"))
		}
		p := l.base.resolveOne()
		n := p.insertOrdered(&xnode{name: l.name})
		p.text = ""
		l.items = []*xnode{n}
		l.doc.dirty = true
		return n
	}
	panic(l.m.r.vm.NewTypeError(fmt.Sprintf("cannot assign to a list of %d %s elements: choose one by index", len(l.items), l.items[0].name)))
}

// assign sets n's content to val: another XML value's copy (renamed to
// n's name, so that copying PID.2 into PID.3 renumbers its components),
// or text.
func (l *xlist) assign(n *xnode, val goja.Value) {
	if src, ok := asList(val); ok {
		if len(src.items) == 0 {
			n.kids, n.text = nil, ""
			return
		}
		c := src.items[0].copyAs(n.name)
		n.kids, n.text = nil, c.text
		for _, k := range c.kids {
			n.add(k)
		}
		at := n.index()
		for j, more := range src.items[1:] { // several: repetitions
			extra := more.copyAs(n.name)
			extra.parent = n.parent
			p := n.parent
			p.kids = append(p.kids[:at+1+j], append([]*xnode{extra}, p.kids[at+1+j:]...)...)
		}
		return
	}
	n.kids, n.text = nil, text(val)
}

func (l *xlist) Delete(key string) bool {
	l.doc.dirty = true
	if i, ok := index(key); ok {
		if i < len(l.items) {
			l.items[i].remove()
			l.items = append(l.items[:i], l.items[i+1:]...)
		}
		return true
	}
	for _, it := range l.items {
		kept := it.kids[:0]
		for _, k := range it.kids {
			if k.name != key {
				kept = append(kept, k)
			}
		}
		it.kids = kept
	}
	return true
}

// asList is v as an E4X value, if it is one.
func asList(v goja.Value) (*xlist, bool) {
	o, ok := v.(*goja.Object)
	if !ok {
		return nil, false
	}
	l, ok := o.Export().(*xlist)
	return l, ok
}

func (l *xlist) String() string {
	switch len(l.items) {
	case 0:
		return ""
	case 1:
		if l.items[0].simple() {
			return l.items[0].text
		}
	}
	parts := make([]string, len(l.items))
	for i, it := range l.items {
		parts[i] = it.toXMLString()
	}
	return strings.Join(parts, "\n")
}

// e4xMethods are the E4X methods scripts call, shared by every value of a
// runtime: each finds its list in this.
func (m *mirthScope) e4xMethods() map[string]goja.Value {
	vm := m.r.vm
	self := func(c goja.FunctionCall) *xlist {
		l, ok := asList(c.This)
		if !ok {
			panic(vm.NewTypeError("not an XML value"))
		}
		return l
	}
	methods := map[string]func(goja.FunctionCall) goja.Value{
		"toString":    func(c goja.FunctionCall) goja.Value { return vm.ToValue(self(c).String()) },
		"toJSON":      func(c goja.FunctionCall) goja.Value { return vm.ToValue(self(c).String()) },
		"valueOf":     func(c goja.FunctionCall) goja.Value { return vm.ToValue(self(c).String()) },
		"toXMLString": func(c goja.FunctionCall) goja.Value { return vm.ToValue(self(c).xmlString()) },
		"length":      func(c goja.FunctionCall) goja.Value { return vm.ToValue(len(self(c).items)) },
		"text": func(c goja.FunctionCall) goja.Value {
			var b strings.Builder
			for _, it := range self(c).items {
				if it.simple() {
					b.WriteString(it.text)
				}
			}
			return vm.ToValue(b.String())
		},
		"children": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			var kids []*xnode
			for _, it := range l.items {
				kids = append(kids, it.kids...)
			}
			return m.list(l.doc, kids, nil, "")
		},
		"elements": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			if goja.IsUndefined(c.Argument(0)) {
				return l.Get("*")
			}
			return l.Get(c.Argument(0).String())
		},
		"child": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			if n, ok := c.Argument(0).Export().(int64); ok {
				var kids []*xnode
				for _, it := range l.items {
					if int(n) < len(it.kids) {
						kids = append(kids, it.kids[n])
					}
				}
				return m.list(l.doc, kids, nil, "")
			}
			return l.Get(c.Argument(0).String())
		},
		"descendants": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			name := "*"
			if !goja.IsUndefined(c.Argument(0)) {
				name = c.Argument(0).String()
			}
			var out []*xnode
			var walk func(n *xnode)
			walk = func(n *xnode) {
				for _, k := range n.kids {
					if name == "*" || k.name == name {
						out = append(out, k)
					}
					walk(k)
				}
			}
			for _, it := range l.items {
				walk(it)
			}
			return m.list(l.doc, out, nil, "")
		},
		"parent": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			if len(l.items) == 0 || l.items[0].parent == nil {
				return goja.Undefined()
			}
			return m.list(l.doc, []*xnode{l.items[0].parent}, nil, "")
		},
		"name": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			if len(l.items) != 1 {
				return goja.Undefined()
			}
			return vm.ToValue(l.items[0].name)
		},
		"hasSimpleContent": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			return vm.ToValue(len(l.items) == 0 || len(l.items) == 1 && l.items[0].simple())
		},
		"hasComplexContent": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			return vm.ToValue(len(l.items) == 1 && !l.items[0].simple())
		},
		"copy": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			out := make([]*xnode, len(l.items))
			for i, it := range l.items {
				out[i] = it.copyAs(it.name)
			}
			return m.list(&xdoc{}, out, nil, "")
		},
		"appendChild":  func(c goja.FunctionCall) goja.Value { return self(c).insert(c.Argument(0), false) },
		"prependChild": func(c goja.FunctionCall) goja.Value { return self(c).insert(c.Argument(0), true) },
		"insertChildAfter": func(c goja.FunctionCall) goja.Value {
			return self(c).insertRelative(c.Argument(0), c.Argument(1), 1)
		},
		"insertChildBefore": func(c goja.FunctionCall) goja.Value {
			return self(c).insertRelative(c.Argument(0), c.Argument(1), 0)
		},
		"setChildren": func(c goja.FunctionCall) goja.Value {
			l := self(c)
			t := l.resolveOne()
			t.kids, t.text = nil, ""
			l.doc.dirty = true
			return l.insert(c.Argument(0), false)
		},
	}
	out := make(map[string]goja.Value, len(methods)+1)
	for k, f := range methods {
		out[k] = vm.ToValue(f)
	}
	out["localName"] = out["name"]
	return out
}

func (l *xlist) xmlString() string {
	parts := make([]string, len(l.items))
	for i, it := range l.items {
		parts[i] = it.toXMLString()
	}
	return strings.Join(parts, "\n")
}

// nodesOf is what appendChild and friends insert: copies of an XML
// value's elements, or the elements of a string of XML.
func (l *xlist) nodesOf(v goja.Value) []*xnode {
	if src, ok := asList(v); ok {
		out := make([]*xnode, len(src.items))
		for i, it := range src.items {
			out[i] = it.copyAs(it.name)
		}
		return out
	}
	s := text(v)
	if strings.HasPrefix(strings.TrimSpace(s), "<") {
		nodes, err := parseXML(s)
		if err != nil {
			panic(l.m.r.vm.NewTypeError("appendChild: " + err.Error()))
		}
		return nodes
	}
	return nil
}

func (l *xlist) insert(v goja.Value, front bool) goja.Value {
	t := l.resolveOne()
	l.doc.dirty = true
	nodes := l.nodesOf(v)
	if nodes == nil {
		t.text += text(v)
		return l.m.list(l.doc, []*xnode{t}, nil, "")
	}
	t.text = ""
	for i, n := range nodes {
		n.parent = t
		if front {
			t.kids = append(t.kids[:i], append([]*xnode{n}, t.kids[i:]...)...)
		} else {
			t.kids = append(t.kids, n)
		}
	}
	return l.m.list(l.doc, []*xnode{t}, nil, "")
}

// insertRelative inserts v after (off 1) or before (off 0) ref, a child of
// l's element; ref null means at the start (after) or end (before).
func (l *xlist) insertRelative(ref, v goja.Value, off int) goja.Value {
	t := l.resolveOne()
	l.doc.dirty = true
	at := len(t.kids)
	if off == 1 {
		at = 0
	}
	if r, ok := asList(ref); ok && len(r.items) > 0 {
		at = -1
		for i, k := range t.kids {
			if k == r.items[0] {
				at = i + off
			}
		}
		if at < 0 {
			return goja.Undefined()
		}
	}
	for i, n := range l.nodesOf(v) {
		n.parent = t
		t.kids = append(t.kids[:at+i], append([]*xnode{n}, t.kids[at+i:]...)...)
	}
	return l.m.list(l.doc, []*xnode{t}, nil, "")
}
