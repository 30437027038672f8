package hl7

import (
	"bytes"
	"fmt"
	"slices"
)

// Set writes value at p, escaping delimiters in it, and creates missing
// fields, repetitions, components and subcomponents on the way. The
// segment must exist (add one with InsertSegment or AppendSegment). Only
// the bytes at p change, plus any separators needed to reach it.
func (m *Message) Set(p Path, value string) error {
	m.scratchBytes = m.delims.AppendEscaped(m.scratchBytes[:0], value)
	return m.SetRaw(p, m.scratchBytes)
}

// SetRaw writes raw at p as it is: its separators, if any, become
// structure (set PID-3.1 to "A^B" and PID-3.2 becomes B). It must not
// contain CR or LF.
func (m *Message) SetRaw(p Path, raw []byte) error {
	if err := m.checkEditable(p); err != nil {
		return err
	}
	if hasLineBreak(raw) {
		return &PathError{Path: p.text, Reason: "a raw value must not contain CR or LF"}
	}
	i, ok := m.findSegment(p.Segment, p.occurrence())
	if !ok {
		return &PathError{Path: p.text, Reason: "no such segment in the message; add it first"}
	}
	if a, b, ok := m.spanIn(i, &p); ok && !slowEdits && !m.hasSeparator(raw) {
		m.segBytes = append(m.segBytes[:0], raw...) // raw may lie in m.buf
		m.replaceInPlace(i, a, b, m.segBytes)       // the piece is there and raw adds no structure
		return nil
	}
	seg := m.segmentCopy(i)
	seg, a, b := m.locateForWrite(seg, i, p)
	seg = slices.Replace(seg, a, b, raw...) // raw is read here, before m.buf changes
	m.segBytes = seg
	return m.replaceSegment(i, seg)
}

// Clear empties the value at p, keeping its place. A path that is absent
// is left absent.
func (m *Message) Clear(p Path) error {
	if err := m.checkEditable(p); err != nil {
		return err
	}
	if !m.Has(p) {
		return nil
	}
	return m.SetRaw(p, nil)
}

// Delete removes what p names. A segment path (OBX[2]) removes the
// segment; a repetition path (PID-3[2]) removes that repetition, and later
// ones move up. A field, component or subcomponent is cleared, and when it
// is the last one of its kind it is removed with its separator, so that it
// reads as absent. Deleting something absent does nothing.
func (m *Message) Delete(p Path) error {
	if p.Field == 0 {
		i, ok := m.findSegment(p.Segment, p.occurrence())
		if !ok {
			return nil
		}
		return m.RemoveSegment(i)
	}
	if err := m.checkEditable(p); err != nil {
		return err
	}
	i, ok := m.findSegment(p.Segment, p.occurrence())
	if !ok || !m.Has(p) {
		return nil
	}
	seg := m.segmentCopy(i)
	base := int(m.segs[i].start)
	a, b, _ := m.span(&p)
	a, b = a-base, b-base
	// The separator that introduces this piece, and whether it is the last.
	var sep byte
	switch {
	case p.Subcomponent > 0:
		sep = m.delims.Subcomponent
	case p.Component > 0:
		sep = m.delims.Component
	case p.Repetition > 0:
		sep = m.delims.Repetition
	default:
		sep = m.delims.Field
	}
	last := b == len(seg) || seg[b] != sep
	switch {
	case p.Repetition > 0 && p.Component == 0:
		if b < len(seg) && seg[b] == sep {
			b++ // drop the repetition and the separator after it
		} else if a > 0 && seg[a-1] == sep {
			a-- // the last repetition: drop the separator before it
		}
	case last && a > 0 && seg[a-1] == sep:
		a--
	}
	seg = slices.Delete(seg, a, b)
	m.segBytes = seg
	return m.replaceSegment(i, seg)
}

// slowEdits, in tests, makes every edit take the general path, to check
// that the quick one writes the same.
var slowEdits = false

// hasSeparator says whether raw holds a field, repetition, component or
// subcomponent separator (which would become structure).
func (m *Message) hasSeparator(raw []byte) bool {
	d := m.delims
	for _, c := range raw {
		if c == d.Field || c == d.Repetition || c == d.Component || c == d.Subcomponent {
			return true
		}
	}
	return false
}

// hasLineBreak reports whether raw holds CR or LF. (Values are short: a
// loop costs less than bytes.ContainsAny's set.)
func hasLineBreak(raw []byte) bool {
	for _, c := range raw {
		if c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// replaceInPlace puts raw (no separator in it) in place of m.buf[a:b],
// which lies in segment i: the segment's field separators after b, and
// the segments after it, move by the difference; nothing is indexed
// again.
func (m *Message) replaceInPlace(i, a, b int, raw []byte) {
	delta := len(raw) - (b - a)
	m.own(delta)
	m.buf = slices.Replace(m.buf, a, b, raw...) // raw is read here, before m.buf changes
	if delta == 0 {
		return
	}
	s := &m.segs[i]
	for k := s.sep0; k < s.sep1; k++ {
		if int(s.start)+int(m.seps[k]) >= b {
			m.seps[k] += int32(delta)
		}
	}
	s.end += int32(delta)
	s.next += int32(delta)
	for j := i + 1; j < len(m.segs); j++ {
		t := &m.segs[j]
		t.start += int32(delta)
		t.end += int32(delta)
		t.next += int32(delta)
	}
}

// checkEditable refuses paths that cannot be written.
func (m *Message) checkEditable(p Path) error {
	switch {
	case p.Field == 0:
		return &PathError{Path: p.text, Reason: "a segment path cannot hold a value; use InsertSegment or RemoveSegment"}
	case isHeaderName([]byte(p.Segment)) && p.Field <= 2:
		return &PathError{Path: p.text, Reason: "the delimiters (field 1 and 2 of a header segment) cannot be edited"}
	}
	return nil
}

// segmentCopy returns a copy of segment i's bytes in m's segment
// scratch buffer, for an edit to build the segment's new bytes in.
func (m *Message) segmentCopy(i int) []byte {
	s := m.segs[i]
	m.segBytes = append(m.segBytes[:0], m.buf[s.start:s.end]...)
	return m.segBytes
}

// editSlack is the room an edit's copy of the message leaves for
// growth, so that a route's later edits rarely move it again.
const editSlack = 256

// own makes m.buf a buffer m may write in place: the first edit copies
// the bytes m was parsed from (or shares with a clone), later ones reuse
// that copy.
func (m *Message) own(grow int) {
	if m.owned {
		return
	}
	buf := make([]byte, len(m.buf), len(m.buf)+max(grow, 0)+editSlack)
	copy(buf, m.buf)
	m.buf, m.owned = buf, true
}

// locateForWrite returns seg, padded with separators as needed, and the
// range in it that p addresses.
func (m *Message) locateForWrite(seg []byte, i int, p Path) ([]byte, int, int) {
	part := p.Field
	if isHeaderName(m.name(i)) {
		part = p.Field - 1
	}
	seg, a, b := ensurePiece(seg, 0, len(seg), m.delims.Field, part+1)
	if p.wholeField() {
		return seg, a, b
	}
	seg, a, b = ensurePiece(seg, a, b, m.delims.Repetition, p.rep())
	if p.Component == 0 {
		return seg, a, b
	}
	seg, a, b = ensurePiece(seg, a, b, m.delims.Component, p.Component)
	if p.Subcomponent == 0 {
		return seg, a, b
	}
	return ensurePiece(seg, a, b, m.delims.Subcomponent, p.Subcomponent)
}

// ensurePiece finds the n-th piece of seg[a:b] split by sep, appending
// separators at b when there are fewer pieces.
func ensurePiece(seg []byte, a, b int, sep byte, n int) ([]byte, int, int) {
	have := bytes.Count(seg[a:b], []byte{sep}) + 1
	if have < n {
		pad := bytes.Repeat([]byte{sep}, n-have)
		seg = slices.Insert(seg, b, pad...)
		b += len(pad)
	}
	x, y, _ := nth(seg, a, b, sep, n)
	return seg, x, y
}

// replaceSegment puts content (segment i's new bytes, which must not lie
// in m.buf) in place of segment i's bytes: it indexes content first, so
// that a segment the limits refuse leaves m as it was, then writes it
// into m's own buffer and shifts the segments after it.
func (m *Message) replaceSegment(i int, content []byte) error {
	old := m.segs[i]
	mark := len(m.seps)
	seg, err := m.scanSegment(content, 0, len(content), i)
	if err != nil {
		m.seps = m.seps[:mark]
		return err
	}
	delta := len(content) - int(old.end-old.start)
	m.own(delta)
	m.buf = slices.Replace(m.buf, int(old.start), int(old.end), content...)

	m.scratch = append(m.scratch[:0], m.seps[mark:]...)
	m.seps = slices.Replace(m.seps[:mark], int(old.sep0), int(old.sep1), m.scratch...)
	sepDelta := int32(len(m.scratch)) - (old.sep1 - old.sep0)
	seg.start, seg.end, seg.next = old.start, old.start+int32(len(content)), old.next+int32(delta)
	seg.sep0, seg.sep1 = old.sep0, old.sep0+int32(len(m.scratch))
	m.segs[i] = seg
	for j := i + 1; j < len(m.segs); j++ {
		s := &m.segs[j]
		s.start += int32(delta)
		s.end += int32(delta)
		s.next += int32(delta)
		s.sep0 += sepDelta
		s.sep1 += sepDelta
	}
	return nil
}

// Terminator is the segment terminator the message uses after MSH (CR,
// LF or CRLF); CR when MSH has none.
func (m *Message) Terminator() string {
	s := m.segs[0]
	t := m.buf[s.end:s.next]
	switch {
	case bytes.HasPrefix(t, []byte("\r\n")):
		return "\r\n"
	case len(t) > 0 && t[0] == '\n':
		return "\n"
	}
	return "\r"
}

// InsertSegment inserts a segment (its bytes without terminator, such as
// "ZPD|1|x") so that it becomes segment number at (0-based, at least 1:
// MSH stays first). It takes the message's terminator.
func (m *Message) InsertSegment(at int, segment []byte) error {
	if at < 1 || at > len(m.segs) {
		return &PathError{Path: "segment", Reason: fmt.Sprintf("position %d is out of range 1..%d (MSH stays first)", at, len(m.segs))}
	}
	if err := m.checkNewSegment(segment); err != nil {
		return err
	}
	term := m.Terminator()
	var ins []byte
	pos := 0
	if at < len(m.segs) {
		pos = int(m.segs[at].start)
		ins = append(append(ins, segment...), term...)
	} else if last := m.segs[len(m.segs)-1]; last.next > last.end {
		pos = int(m.segs[len(m.segs)-1].next)
		ins = append(append(ins, segment...), term...)
	} else {
		pos = int(last.end)
		ins = append(append(ins, term...), segment...)
	}
	return m.splice(pos, pos, ins)
}

// AppendSegment adds a segment after the last one.
func (m *Message) AppendSegment(segment []byte) error {
	return m.InsertSegment(len(m.segs), segment)
}

// RemoveSegment removes segment i (0-based; not MSH) and its terminator.
// The index is updated in place (no rescan): later segments shift.
func (m *Message) RemoveSegment(i int) error {
	if i < 1 || i >= len(m.segs) {
		return &PathError{Path: "segment", Reason: "segment position out of range (MSH cannot be removed)"}
	}
	s := m.segs[i]
	m.own(0)
	m.buf = slices.Delete(m.buf, int(s.start), int(s.next))
	cut, nseps := s.next-s.start, s.sep1-s.sep0
	m.seps = slices.Delete(m.seps, int(s.sep0), int(s.sep1))
	m.segs = slices.Delete(m.segs, i, i+1)
	for j := i; j < len(m.segs); j++ {
		t := &m.segs[j]
		t.start, t.end, t.next = t.start-cut, t.end-cut, t.next-cut
		t.sep0, t.sep1 = t.sep0-nseps, t.sep1-nseps
	}
	return nil
}

func (m *Message) checkNewSegment(segment []byte) error {
	if bytes.ContainsAny(segment, "\r\n") {
		return &PathError{Path: "segment", Reason: "a segment must not contain CR or LF"}
	}
	ok := len(segment) >= 3 && (len(segment) == 3 || segment[3] == m.delims.Field)
	for k := 0; ok && k < 3; k++ {
		c := segment[k]
		ok = c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if !ok || isEnvelopeName(segment[:3]) {
		return &PathError{Path: "segment", Reason: "a segment must start with a three-character ID other than MSH, FHS, BHS, BTS or FTS, then the field separator"}
	}
	return nil
}

// splice replaces buf[a:b] with ins in a new buffer and re-indexes.
func (m *Message) splice(a, b int, ins []byte) error {
	buf := make([]byte, 0, len(m.buf)-(b-a)+len(ins))
	buf = append(buf, m.buf[:a]...)
	buf = append(buf, ins...)
	buf = append(buf, m.buf[b:]...)
	prev, prevSegs, prevSeps := m.buf, slices.Clone(m.segs), slices.Clone(m.seps)
	m.buf, m.owned = buf, true
	m.segs, m.seps = m.segs[:0], m.seps[:0]
	if err := m.index(); err != nil {
		m.buf, m.segs, m.seps = prev, prevSegs, prevSeps
		return err
	}
	return nil
}
