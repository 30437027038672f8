package hl7

import "bytes"

// Message is an HL7 v2 message: its bytes and an index of segment and
// field offsets into them. Parse does not copy the input; the first edit
// copies it, so the caller's bytes are never written. A Message is not safe
// for concurrent use; reuse one with ParseInto to parse without allocating.
type Message struct {
	buf          []byte
	owned        bool // buf was allocated by an edit, not passed in
	delims       Delimiters
	encLen       int // length of MSH-2 as written in the bytes
	repaired     bool
	limits       Limits
	segs         []segment
	seps         []int32 // field separator offsets, relative to their segment's start
	prefix       int     // leading CR/LF bytes before MSH, kept for byte-exact encoding
	scratch      []int32
	scratchBytes []byte
}

// segment is one segment's place in Message.buf: content buf[start:end],
// then its terminator and any blank lines up to next. Its field separators
// are m.seps[sep0:sep1], as offsets from start.
type segment struct {
	start, end, next int32
	sep0, sep1       int32
}

// utf8BOM is stripped from the front of a message.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Parse indexes one HL7 v2 message with DefaultLimits. data must begin
// with MSH (after an optional UTF-8 BOM and blank lines); segments end in
// CR, LF or CRLF, the last one optionally. The Message refers to data:
// do not modify data while the Message is in use.
func Parse(data []byte) (*Message, error) {
	m := &Message{}
	if err := m.ParseWith(data, DefaultLimits); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseWith indexes data into m under the given limits, reusing m's
// memory. On error m is left empty.
func (m *Message) ParseWith(data []byte, lim Limits) error {
	m.reset()
	m.limits = lim.withDefaults()
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(data) > m.limits.MaxMessageBytes {
		return newError(ErrTooLarge, CodeInternal, at(m.limits.MaxMessageBytes), "message is %d bytes; the limit is %d", len(data), m.limits.MaxMessageBytes)
	}
	prefix := 0
	for prefix < len(data) && (data[prefix] == '\r' || data[prefix] == '\n') {
		prefix++
	}
	if prefix == len(data) {
		return newError(ErrEmpty, CodeSegmentSequence, at(0), "no segments")
	}
	rest := data[prefix:]
	if len(rest) < 3 || rest[0] != 'M' || rest[1] != 'S' || rest[2] != 'H' {
		return newError(ErrNoMSH, CodeSegmentSequence, Location{Segment: "MSH", Sequence: 1, Offset: prefix}, "the first segment is not MSH")
	}
	d, encLen, repaired, err := parseDelimiters(rest, prefix)
	if err != nil {
		return err
	}
	m.buf, m.delims, m.encLen, m.repaired, m.prefix = data, d, encLen, repaired, prefix
	m.reserve()
	if err := m.index(); err != nil {
		m.reset()
		return err
	}
	return nil
}

// ParseInto is ParseWith under DefaultLimits.
func (m *Message) ParseInto(data []byte) error { return m.ParseWith(data, DefaultLimits) }

func (m *Message) reset() {
	m.buf, m.owned, m.delims, m.encLen, m.repaired, m.prefix = nil, false, Delimiters{}, 0, false, 0
	m.segs, m.seps = m.segs[:0], m.seps[:0]
}

// reserve sizes the index once from two fast counts, so that memory is
// a fixed multiple of the input (4 bytes a separator, 20 a segment)
// rather than what repeated slice growth would leave behind.
func (m *Message) reserve() {
	segs := bytes.Count(m.buf, []byte{'\r'}) + bytes.Count(m.buf, []byte{'\n'}) + 1
	segs = min(segs, m.limits.MaxSegments)
	if cap(m.segs) < segs {
		m.segs = make([]segment, 0, segs)
	}
	seps := bytes.Count(m.buf, []byte{m.delims.Field}) + 1
	seps = min(seps, segs*m.limits.MaxFieldsPerSegment)
	if cap(m.seps) < seps {
		m.seps = make([]int32, 0, seps)
	}
}

// index scans m.buf from m.prefix and records every segment and field
// separator. It is the hot loop of the package: one pass, no copies.
func (m *Message) index() error {
	buf := m.buf
	n := len(buf)
	pos := m.prefix
	for pos < n {
		if len(m.segs) == m.limits.MaxSegments {
			return newError(ErrTooLarge, CodeInternal, at(pos), "more than %d segments", m.limits.MaxSegments)
		}
		seg, err := m.scanSegment(pos, len(m.segs))
		if err != nil {
			return err
		}
		m.segs = append(m.segs, seg)
		pos = int(seg.next)
	}
	return nil
}

// scanSegment indexes segment number idx (0-based), which starts at pos,
// and appends its field separators to m.seps. Segment 0 is MSH, whose
// MSH-2 is not split.
func (m *Message) scanSegment(pos, idx int) (segment, error) {
	isHeader := idx == 0
	buf := m.buf
	n := len(buf)
	fs, rep := m.delims.Field, m.delims.Repetition
	maxReps := m.limits.MaxRepetitions
	maxSeps := int32(m.limits.MaxFieldsPerSegment)
	seg := segment{start: int32(pos), sep0: int32(len(m.seps))}
	i := pos
	if isHeader {
		// MSH-1 is the separator itself and MSH-2 holds the repetition
		// character as data: index both without counting repetitions.
		m.seps = append(m.seps, 3)
		i = pos + 4 + m.encLen
	}
	reps := 0
	for ; i < n; i++ {
		c := buf[i]
		if c == fs {
			if int32(len(m.seps))-seg.sep0 >= maxSeps {
				return seg, newError(ErrTooLarge, CodeInternal, at(i), "segment %d has more than %d fields", idx+1, maxSeps)
			}
			m.seps = append(m.seps, int32(i-pos))
			reps = 0
		} else if c == rep {
			if reps++; reps >= maxReps {
				return seg, newError(ErrTooLarge, CodeInternal, at(i), "a field in segment %d has more than %d repetitions", idx+1, maxReps)
			}
		} else if c == '\r' || c == '\n' {
			break
		}
	}
	seg.end = int32(i)
	for i < n && (buf[i] == '\r' || buf[i] == '\n') {
		i++
	}
	seg.next = int32(i)
	seg.sep1 = int32(len(m.seps))
	if err := m.checkSegmentName(seg, idx); err != nil {
		return seg, err
	}
	return seg, nil
}

// checkSegmentName requires a three-character segment ID of capital
// letters and digits, followed by a field separator or the segment's end.
func (m *Message) checkSegmentName(seg segment, idx int) error {
	name := m.buf[seg.start:seg.end]
	if seg.sep1 > seg.sep0 {
		name = name[:m.seps[seg.sep0]]
	}
	ok := len(name) == 3
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			ok = false
		}
	}
	if !ok {
		return newError(ErrBadSegment, CodeSegmentSequence, Location{Offset: int(seg.start)},
			"segment %d does not start with a three-character segment ID (capital letters and digits) followed by the field separator", idx+1)
	}
	if idx > 0 && isEnvelopeName(name) {
		// Two messages (or a batch) in one: accepting it would hide every
		// message after the first inside the first.
		return newError(ErrBadSegment, CodeSegmentSequence, Location{Segment: string(name), Offset: int(seg.start)},
			"segment %d is a message or batch header or trailer: one message holds one MSH; split batches with SplitBatch", idx+1)
	}
	return nil
}

// Delimiters returns the message's separators.
func (m *Message) Delimiters() Delimiters { return m.delims }

// RepairedEncodingChars reports that MSH-2 was the doubled-backslash form
// ^~\\& and was read as ^~\&. Callers may log it as a warning.
func (m *Message) RepairedEncodingChars() bool { return m.repaired }

// SegmentCount is the number of segments.
func (m *Message) SegmentCount() int { return len(m.segs) }

// Bytes returns the message's bytes: the input (less a BOM) when nothing
// was edited, byte for byte. The caller must not modify them.
func (m *Message) Bytes() []byte { return m.buf }

// name returns segment i's three-byte ID.
func (m *Message) name(i int) []byte {
	s := m.segs[i]
	return m.buf[s.start : s.start+3]
}

// isHeaderName reports MSH, BHS and FHS, whose field 1 is the separator
// and field 2 the encoding characters.
func isHeaderName(name []byte) bool {
	s := string(name) // compared without allocating
	return s == "MSH" || s == "BHS" || s == "FHS"
}

// isEnvelopeName reports MSH and the batch segments FHS, BHS, BTS, FTS,
// which may not stand inside a message.
func isEnvelopeName(name []byte) bool {
	s := string(name)
	return isHeaderName(name) || s == "BTS" || s == "FTS"
}

// fieldSpan returns the byte range of field n (HL7 numbering) of segment
// i, and whether that field is present.
func (m *Message) fieldSpan(i, n int) (int, int, bool) {
	s := m.segs[i]
	seps := m.seps[s.sep0:s.sep1]
	part := n
	if i == 0 || isHeaderName(m.name(i)) {
		if n == 1 {
			if len(seps) == 0 {
				return 0, 0, false
			}
			a := int(s.start) + 3
			return a, a + 1, true
		}
		part = n - 1
	}
	if part < 1 || part > len(seps) {
		return 0, 0, false
	}
	a := int(s.start) + int(seps[part-1]) + 1
	b := int(s.end)
	if part < len(seps) {
		b = int(s.start) + int(seps[part])
	}
	return a, b, true
}

// fieldCount is the number of the last field present in segment i.
func (m *Message) fieldCount(i int) int {
	s := m.segs[i]
	n := int(s.sep1 - s.sep0)
	if n > 0 && (i == 0 || isHeaderName(m.name(i))) {
		n++
	}
	return n
}

// Clone returns a Message that can be edited without changing m. It
// shares m's bytes, which no edit writes in place (an edit builds a new
// buffer), and copies only the index: far cheaper than parsing again.
func (m *Message) Clone() *Message {
	c := *m
	c.segs = append([]segment(nil), m.segs...)
	c.seps = append([]int32(nil), m.seps...)
	c.scratch, c.scratchBytes = nil, nil
	return &c
}
