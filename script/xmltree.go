package script

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// xnode is one element of the XML form of a message that Mirth scripts
// see (Mirth's ER7Reader): HL7Message > PID > PID.5 > PID.5.1 > PID.5.1.1.
// Text is raw ER7 (escape sequences left as written), as in Mirth.
type xnode struct {
	name   string
	text   string
	kids   []*xnode
	parent *xnode
}

func (n *xnode) add(k *xnode) *xnode {
	k.parent = n
	n.kids = append(n.kids, k)
	return k
}

func (n *xnode) child(name, text string) *xnode {
	return n.add(&xnode{name: name, text: text})
}

// simple reports whether n has simple content (no element children).
func (n *xnode) simple() bool { return len(n.kids) == 0 }

// textOf is n's text content: its own text, or its descendants' joined.
func (n *xnode) textOf() string {
	if n.simple() {
		return n.text
	}
	var b strings.Builder
	n.writeText(&b)
	return b.String()
}

func (n *xnode) writeText(b *strings.Builder) {
	if n.simple() {
		b.WriteString(n.text)
		return
	}
	for _, k := range n.kids {
		k.writeText(b)
	}
}

func (n *xnode) copyAs(name string) *xnode {
	c := &xnode{name: name, text: n.text}
	for _, k := range n.kids {
		kn := k.name
		if strings.HasPrefix(kn, n.name+".") {
			kn = name + kn[len(n.name):] // PID.2.1 copied as PID.3 is PID.3.1
		}
		c.add(k.copyAs(kn))
	}
	return c
}

func (n *xnode) index() int {
	if n.parent == nil {
		return -1
	}
	for i, k := range n.parent.kids {
		if k == n {
			return i
		}
	}
	return -1
}

func (n *xnode) remove() {
	if i := n.index(); i >= 0 {
		p := n.parent
		p.kids = append(p.kids[:i], p.kids[i+1:]...)
		n.parent = nil
	}
}

// number is the last dot-separated number of an HL7 element name (5 for
// PID.5; 0 for PID).
func number(name string) int {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(name[i+1:])
	return n
}

// insertOrdered adds k among n's children after those numbered no higher,
// so that a field created by assignment lands in its place.
func (n *xnode) insertOrdered(k *xnode) *xnode {
	k.parent = n
	num := number(k.name)
	at := len(n.kids)
	if num > 0 {
		at = sort.Search(len(n.kids), func(i int) bool {
			return number(n.kids[i].name) > num && strings.Count(n.kids[i].name, ".") == strings.Count(k.name, ".")
		})
	}
	n.kids = append(n.kids, nil)
	copy(n.kids[at+1:], n.kids[at:])
	n.kids[at] = k
	return k
}

// fromER7 is message m as Mirth's XML tree. Element names come from
// names (kept across messages: a steady feed allocates none), nodes from
// a slab, and texts are substrings of one copy of each segment.
func fromER7(m *hl7.Message, names *nameCache) *xnode {
	b := treeBuilder{names: names}
	root := b.node("HL7Message", "")
	d := m.Delimiters()
	var segs []*xnode
	for seg := range m.Segments() {
		segs = append(segs, b.segment(string(seg.Bytes()), d))
	}
	b.setKids(root, segs)
	return root
}

type treeBuilder struct {
	names *nameCache
	slab  []xnode
	ptrs  []*xnode
	comps []*xnode // scratch: one field's components
}

func (b *treeBuilder) node(name, text string) *xnode {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]xnode, 0, 256)
	}
	b.slab = append(b.slab, xnode{name: name, text: text})
	return &b.slab[len(b.slab)-1]
}

// setKids gives n its children, from a shared backing array whose
// capacity ends at them (an append later copies).
func (b *treeBuilder) setKids(n *xnode, kids []*xnode) {
	if len(kids) == 0 {
		return
	}
	if cap(b.ptrs)-len(b.ptrs) < len(kids) {
		b.ptrs = make([]*xnode, 0, max(512, len(kids)))
	}
	at := len(b.ptrs)
	b.ptrs = append(b.ptrs, kids...)
	n.kids = b.ptrs[at:len(b.ptrs):len(b.ptrs)]
	for _, k := range kids {
		k.parent = n
	}
}

func (b *treeBuilder) segment(raw string, d hl7.Delimiters) *xnode {
	name, rest, _ := strings.Cut(raw, string(d.Field))
	name = strings.TrimSpace(name)
	s := b.node(name, "")
	var kids []*xnode
	n := 1
	if name == "MSH" || name == "BHS" || name == "FHS" {
		// MSH-1 is the field separator itself: MSH-2 is the first field.
		kids = append(kids, b.node(b.names.field(name, 1), string(d.Field)))
		enc, after, more := strings.Cut(rest, string(d.Field))
		kids = append(kids, b.node(b.names.field(name, 2), enc))
		rest, n = after, 3
		if !more {
			b.setKids(s, kids)
			return s
		}
	} else if !strings.Contains(raw, string(d.Field)) {
		return s
	}
	for {
		f, after, more := strings.Cut(rest, string(d.Field))
		kids = b.field(kids, name, n, f, d)
		if !more {
			break
		}
		rest, n = after, n+1
	}
	b.setKids(s, kids)
	return s
}

// field appends field n's elements (one per repetition) to kids.
func (b *treeBuilder) field(kids []*xnode, seg string, n int, f string, d hl7.Delimiters) []*xnode {
	fname := b.names.field(seg, n)
	if f == "" {
		return append(kids, b.node(fname, ""))
	}
	for {
		rep, after, more := strings.Cut(f, string(d.Repetition))
		if rep == "" {
			kids = append(kids, b.node(fname, ""))
		} else {
			fe := b.node(fname, "")
			comps := b.comps[:0]
			c := 1
			for {
				comp, cafter, cmore := strings.Cut(rep, string(d.Component))
				cname := b.names.component(seg, n, c)
				if d.Subcomponent != 0 && strings.IndexByte(comp, d.Subcomponent) >= 0 {
					ce := b.node(cname, "")
					var subs []*xnode
					for si := 1; ; si++ {
						sub, safter, smore := strings.Cut(comp, string(d.Subcomponent))
						subs = append(subs, b.node(cname+"."+strconv.Itoa(si), sub))
						if !smore {
							break
						}
						comp = safter
					}
					b.setKids(ce, subs)
					comps = append(comps, ce)
				} else {
					comps = append(comps, b.node(cname, comp))
				}
				if !cmore {
					break
				}
				rep, c = cafter, c+1
			}
			b.setKids(fe, comps)
			b.comps = comps[:0]
			kids = append(kids, fe)
		}
		if !more {
			return kids
		}
		f = after
	}
}

// nameCache keeps element names (PID.5, PID.5.1) once made.
type nameCache struct {
	fields map[string][]string   // segment -> field number -> name
	comps  map[string][][]string // segment -> field -> component -> name
}

func (c *nameCache) field(seg string, n int) string {
	if c.fields == nil {
		c.fields = map[string][]string{}
	}
	names := c.fields[seg]
	if n < len(names) {
		return names[n]
	}
	for len(names) <= n {
		names = append(names, seg+"."+strconv.Itoa(len(names)))
	}
	c.fields[seg] = names
	return names[n]
}

func (c *nameCache) component(seg string, n, comp int) string {
	if c.comps == nil {
		c.comps = map[string][][]string{}
	}
	fields := c.comps[seg]
	if n < len(fields) && comp < len(fields[n]) {
		return fields[n][comp]
	}
	for len(fields) <= n {
		fields = append(fields, nil)
	}
	names := fields[n]
	for len(names) <= comp {
		names = append(names, c.field(seg, n)+"."+strconv.Itoa(len(names)))
	}
	fields[n] = names
	c.comps[seg] = fields
	return names[comp]
}

// toER7 serializes a message tree to ER7 (Mirth's XMLEncodedHL7Handler):
// each segment ended by \r, missing fields and components filled in.
func toER7(root *xnode) []byte {
	var b bytes.Buffer
	field, comp, rep, sub := "|", "^", "~", "&"
	for _, s := range root.kids {
		header := s.name == "MSH" || s.name == "BHS" || s.name == "FHS"
		b.WriteString(s.name)
		prev := 0
		if header {
			for _, k := range s.kids {
				switch k.name {
				case s.name + ".1":
					if k.text != "" {
						field = k.text[:1]
					}
				case s.name + ".2":
					enc := k.textOf()
					if len(enc) > 0 {
						comp = enc[:1]
					}
					if len(enc) > 1 {
						rep = enc[1:2]
					}
					if len(enc) > 3 {
						sub = enc[3:4]
					}
				}
			}
			b.WriteString(field)
			for _, k := range s.kids {
				if k.name == s.name+".2" {
					b.WriteString(k.textOf())
				}
			}
			prev = 2
		}
		for i, k := range s.kids {
			num := number(k.name)
			if header && num <= 2 {
				continue
			}
			if i > 0 && s.kids[i-1].name == k.name && num == prev {
				b.WriteString(rep)
			} else {
				for range max(1, num-prev) {
					b.WriteString(field)
				}
			}
			prev = max(prev, num)
			writeJoined(&b, k, comp, sub)
		}
		b.WriteByte('\r')
	}
	return b.Bytes()
}

// writeJoined writes a field (or component) element: its components
// joined by sep, gaps filled, subcomponents by the next separator.
func writeJoined(b *bytes.Buffer, n *xnode, sep, next string) {
	if n.simple() {
		b.WriteString(n.text)
		return
	}
	prev := 0
	for i, k := range n.kids {
		num := number(k.name)
		if i > 0 {
			for range max(1, num-prev) {
				b.WriteString(sep)
			}
		} else {
			for range max(0, num-1) {
				b.WriteString(sep)
			}
		}
		prev = num
		writeJoined(b, k, next, next)
	}
}

// toXMLString is n as indented XML, as E4X's toXMLString writes it.
func (n *xnode) toXMLString() string {
	var b strings.Builder
	n.writeXML(&b, 0)
	return b.String()
}

func (n *xnode) writeXML(b *strings.Builder, depth int) {
	indent := strings.Repeat("  ", depth)
	b.WriteString(indent)
	if n.simple() && n.text == "" {
		b.WriteString("<" + n.name + "/>")
		return
	}
	b.WriteString("<" + n.name + ">")
	if n.simple() {
		_ = xml.EscapeText(writerOf{b}, []byte(n.text))
		b.WriteString("</" + n.name + ">")
		return
	}
	for _, k := range n.kids {
		b.WriteByte('\n')
		k.writeXML(b, depth+1)
	}
	b.WriteString("\n" + indent + "</" + n.name + ">")
}

type writerOf struct{ b *strings.Builder }

func (w writerOf) Write(p []byte) (int, error) { return w.b.Write(p) }

// parseXML reads an XML fragment (new XML('<PID/>')) into elements;
// attributes, comments and processing instructions are dropped.
func parseXML(s string) ([]*xnode, error) {
	dec := xml.NewDecoder(strings.NewReader("<x>" + s + "</x>"))
	root := &xnode{}
	cur := root
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			cur.text = "" // mixed content: the elements count
			cur = cur.child(t.Name.Local, "")
		case xml.EndElement:
			if cur.parent != nil {
				cur = cur.parent
			}
		case xml.CharData:
			if len(cur.kids) == 0 {
				cur.text += string(t)
			}
		}
	}
	if len(root.kids) != 1 {
		return nil, errors.New("not well-formed XML")
	}
	out := root.kids[0].kids
	for _, k := range out {
		k.parent = nil
		if !k.simple() {
			k.text = ""
		}
	}
	return out, nil
}
