package hl7

import (
	"bytes"
	"iter"
)

// Raw returns the bytes at p exactly as they stand in the message (escape
// sequences not decoded) and whether p is present. It never allocates.
// A path that names a segment alone (OBX[2]) returns the segment's bytes
// without its terminator.
func (m *Message) Raw(p Path) ([]byte, bool) {
	a, b, ok := m.span(&p)
	if !ok {
		return nil, false
	}
	return m.buf[a:b], true
}

// Value returns the value at p with \F\ \S\ \T\ \R\ \E\ decoded. It
// allocates only when the value holds an escape sequence; otherwise it
// returns the message's own bytes, which the caller must not modify.
func (m *Message) Value(p Path) []byte {
	a, b, ok := m.span(&p)
	if !ok {
		return nil
	}
	return m.decoded(&p, a, b)
}

// decoded is m.buf[a:b], the bytes at p, with escape sequences decoded.
func (m *Message) decoded(p *Path, a, b int) []byte {
	raw := m.buf[a:b]
	if p.Segment == "MSH" && (p.Field == 1 || p.Field == 2) {
		return raw
	}
	return m.delims.Unescape(raw)
}

// ValueString returns Value as a string: a copy, "" when absent.
func (m *Message) ValueString(p Path) string { return string(m.Value(p)) }

// Get parses path and returns its decoded value. It is for tools and
// tests; hot paths parse a Path once and call Value.
func (m *Message) Get(path string) (string, error) {
	p, err := ParsePath(path)
	if err != nil {
		return "", err
	}
	return m.ValueString(p), nil
}

// Has reports whether p is present (an empty value counts as absent when
// it has no place in the bytes).
func (m *Message) Has(p Path) bool {
	_, _, ok := m.span(&p)
	return ok
}

// span locates p in m.buf.
func (m *Message) span(p *Path) (int, int, bool) {
	i, ok := m.findSegment(p.Segment, p.occurrence())
	if !ok {
		return 0, 0, false
	}
	return m.spanIn(i, p)
}

// spanIn locates p's field, repetition and component in segment i.
func (m *Message) spanIn(i int, p *Path) (int, int, bool) {
	if p.Field == 0 {
		s := m.segs[i]
		return int(s.start), int(s.end), true
	}
	a, b, ok := m.fieldSpan(i, p.Field)
	if !ok {
		return 0, 0, false
	}
	if p.wholeField() || (p.Field <= 2 && isHeaderName(m.name(i))) {
		return a, b, true
	}
	return m.within(a, b, p)
}

// within narrows the field bytes [a,b) to p's repetition, component and
// subcomponent.
func (m *Message) within(a, b int, p *Path) (int, int, bool) {
	a, b, ok := nth(m.buf, a, b, m.delims.Repetition, p.rep())
	if !ok || p.Component == 0 {
		return a, b, ok
	}
	if a, b, ok = nth(m.buf, a, b, m.delims.Component, p.Component); !ok || p.Subcomponent == 0 {
		return a, b, ok
	}
	return nth(m.buf, a, b, m.delims.Subcomponent, p.Subcomponent)
}

// nth returns the n-th (1-based) piece of buf[a:b] split by sep.
func nth(buf []byte, a, b int, sep byte, n int) (int, int, bool) {
	for k := 1; ; k++ {
		i := bytes.IndexByte(buf[a:b], sep)
		if k == n {
			if i < 0 {
				return a, b, true
			}
			return a, a + i, true
		}
		if i < 0 {
			return 0, 0, false
		}
		a += i + 1
	}
}

// findSegment returns the index of the occ-th segment named name.
func (m *Message) findSegment(name string, occ int) (int, bool) {
	if len(name) != 3 {
		return 0, false
	}
	seen := 0
	for i, s := range m.segs {
		b := m.buf[s.start:]
		if b[0] == name[0] && b[1] == name[1] && b[2] == name[2] && (s.end-s.start == 3 || b[3] == m.delims.Field) {
			if seen++; seen == occ {
				return i, true
			}
		}
	}
	return 0, false
}

// Segment is a read-only view of one segment of a Message, valid until the
// message is edited.
type Segment struct {
	m *Message
	i int
}

// Index is the segment's 0-based position in the message.
func (s Segment) Index() int { return s.i }

// Name is the segment ID, such as "PID".
func (s Segment) Name() string { return string(s.m.name(s.i)) }

// NameIs reports whether the segment ID is name, without allocating.
func (s Segment) NameIs(name string) bool { return string(s.m.name(s.i)) == name }

// Bytes are the segment's bytes without the terminator.
func (s Segment) Bytes() []byte { seg := s.m.segs[s.i]; return s.m.buf[seg.start:seg.end] }

// Field returns field n's raw bytes (HL7 numbering, so MSH-1 is the separator).
func (s Segment) Field(n int) ([]byte, bool) {
	a, b, ok := s.m.fieldSpan(s.i, n)
	if !ok {
		return nil, false
	}
	return s.m.buf[a:b], true
}

// Value is Message.Value of p within this segment: p's segment name and
// occurrence are not looked at, so a caller that holds the segment finds
// the value without searching the message for it.
func (s Segment) Value(p Path) []byte {
	a, b, ok := s.m.spanIn(s.i, &p)
	if !ok {
		return nil
	}
	return s.m.decoded(&p, a, b)
}

// FieldCount is the number of the last field present.
func (s Segment) FieldCount() int { return s.m.fieldCount(s.i) }

// Segments iterates over all segments in order.
func (m *Message) Segments() iter.Seq[Segment] {
	return func(yield func(Segment) bool) {
		for i := range m.segs {
			if !yield(Segment{m, i}) {
				return
			}
		}
	}
}

// SegmentsNamed iterates over the segments with the given ID, in order.
func (m *Message) SegmentsNamed(name string) iter.Seq[Segment] {
	return func(yield func(Segment) bool) {
		for i := range m.segs {
			if string(m.name(i)) == name && !yield(Segment{m, i}) {
				return
			}
		}
	}
}

// Count returns how many segments a segment path names (p.Field == 0),
// or how many repetitions the field at p has (0 when absent).
func (m *Message) Count(p Path) int {
	if p.Field == 0 {
		n := 0
		for i := range m.segs {
			if string(m.name(i)) == p.Segment {
				n++
			}
		}
		return n
	}
	whole := p
	whole.Repetition, whole.Component, whole.Subcomponent = 0, 0, 0
	raw, ok := m.Raw(whole)
	if !ok {
		return 0
	}
	if p.Segment == "MSH" && p.Field <= 2 {
		return 1
	}
	return bytes.Count(raw, []byte{m.delims.Repetition}) + 1
}

// Repetitions iterates over the repetitions of the field at p (its
// repetition, component and subcomponent are ignored), yielding each
// 1-based number and raw bytes.
func (m *Message) Repetitions(p Path) iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		whole := p
		whole.Repetition, whole.Component, whole.Subcomponent = 0, 0, 0
		a, b, ok := m.span(&whole)
		if !ok {
			return
		}
		for k := 1; ; k++ {
			i := bytes.IndexByte(m.buf[a:b], m.delims.Repetition)
			if i < 0 {
				yield(k, m.buf[a:b])
				return
			}
			if !yield(k, m.buf[a:a+i]) {
				return
			}
			a += i + 1
		}
	}
}

// Values iterates over every value p covers: each segment of p's name
// unless p names one (OBX[2]-5), and each repetition of the field unless
// p names one (PID-3[2].1). It yields the path of each (with occurrence
// and repetition filled in) and its decoded value, which may be empty;
// what is absent is skipped. It walks the message once.
func (m *Message) Values(p Path) iter.Seq2[Path, []byte] {
	return func(yield func(Path, []byte) bool) {
		if len(p.Segment) != 3 || p.Field == 0 {
			return
		}
		raw := p.Segment == "MSH" && p.Field <= 2 // the delimiters: not unescaped
		occ := 0
		for i, s := range m.segs {
			b := m.buf[s.start:]
			if b[0] != p.Segment[0] || b[1] != p.Segment[1] || b[2] != p.Segment[2] || (s.end-s.start > 3 && b[3] != m.delims.Field) {
				continue
			}
			occ++
			if p.Occurrence != 0 && occ != p.Occurrence {
				continue
			}
			q := p
			q.Occurrence = occ
			if !m.yieldValues(i, q, raw, yield) || p.Occurrence != 0 || i == 0 {
				return // MSH, first, is the only one of its name
			}
		}
	}
}

// yieldValues yields q's values in segment i: the one repetition q names,
// or each; it returns false when yield asked to stop.
func (m *Message) yieldValues(i int, q Path, raw bool, yield func(Path, []byte) bool) bool {
	value := func(a, b int) []byte {
		if raw {
			return m.buf[a:b]
		}
		return m.delims.Unescape(m.buf[a:b])
	}
	if q.Repetition != 0 {
		a, b, ok := m.spanIn(i, &q)
		return !ok || yield(q, value(a, b))
	}
	fa, fb, ok := m.fieldSpan(i, q.Field)
	if !ok {
		return true
	}
	if q.Field <= 2 && isHeaderName(m.name(i)) {
		q.Repetition = 1
		return yield(q, value(fa, fb))
	}
	for rep := 1; ; rep++ {
		cut := bytes.IndexByte(m.buf[fa:fb], m.delims.Repetition)
		ra, rb := fa, fb
		if cut >= 0 {
			rb = fa + cut
		}
		q.Repetition = rep
		var v []byte
		a, b, ok := ra, rb, true
		if q.Component != 0 {
			if a, b, ok = nth(m.buf, ra, rb, m.delims.Component, q.Component); ok && q.Subcomponent != 0 {
				a, b, ok = nth(m.buf, a, b, m.delims.Subcomponent, q.Subcomponent)
			}
		}
		if ok {
			v = value(a, b)
		}
		if !yield(q, v) {
			return false
		}
		if cut < 0 {
			return true
		}
		fa = rb + 1
	}
}
