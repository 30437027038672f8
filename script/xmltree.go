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

// fromER7 is message m as Mirth's XML tree.
func fromER7(m *hl7.Message) *xnode {
	root := &xnode{name: "HL7Message"}
	d := m.Delimiters()
	for seg := range m.Segments() {
		raw := string(seg.Bytes())
		fields := strings.Split(raw, string(d.Field))
		name := strings.TrimSpace(fields[0])
		s := root.child(name, "")
		first, shift := 1, 0
		if name == "MSH" || name == "BHS" || name == "FHS" {
			// MSH-1 is the field separator itself: MSH-n is fields[n-1].
			s.child(name+".1", string(d.Field))
			if len(fields) > 1 {
				s.child(name+".2", fields[1])
			}
			first, shift = 2, 1
		}
		for i := first; i < len(fields); i++ {
			addField(s, name+"."+strconv.Itoa(i+shift), fields[i], d)
		}
	}
	return root
}

func addField(s *xnode, name, f string, d hl7.Delimiters) {
	if f == "" {
		s.child(name, "")
		return
	}
	for _, rep := range strings.Split(f, string(d.Repetition)) {
		if rep == "" {
			s.child(name, "")
			continue
		}
		fe := s.child(name, "")
		for ci, comp := range strings.Split(rep, string(d.Component)) {
			cname := name + "." + strconv.Itoa(ci+1)
			if d.Subcomponent != 0 && strings.IndexByte(comp, d.Subcomponent) >= 0 {
				ce := fe.child(cname, "")
				for si, sub := range strings.Split(comp, string(d.Subcomponent)) {
					ce.child(cname+"."+strconv.Itoa(si+1), sub)
				}
				continue
			}
			fe.child(cname, comp)
		}
	}
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
