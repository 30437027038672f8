package hl7

import "bytes"

// Message is an HL7 v2 message: its bytes and an index of segment and
// field offsets into them. Parse does not copy the input; the first edit
// copies it, so the caller's bytes are never written, and later edits
// write that copy in place: bytes and values returned before an edit may
// change with it, so copy what must outlive the next edit. A Message is
// not safe for concurrent use; reuse one with ParseInto to parse without
// allocating.
type Message struct {
	buf          []byte
	owned        bool // buf was allocated by an edit and is not shared: edits write it in place
	delims       Delimiters
	encLen       int // length of MSH-2 as written in the bytes
	repaired     bool
	limits       Limits
	segs         []segment
	seps         []int32 // field separator offsets, relative to their segment's start
	prefix       int     // leading CR/LF bytes before MSH, kept for byte-exact encoding
	scratch      []int32
	scratchBytes []byte // an escaped value on its way in
	segBytes     []byte // a segment's bytes while an edit builds them
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

// Reset empties m and keeps its index memory for the next ParseWith or
// CloneInto. Bytes m returned before are left as they were.
func (m *Message) Reset() { m.reset() }

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
// separator. It is the hot loop of the package: one pass, no copies. The
// next CR and the next LF are each searched for once and reused until
// passed, so that a file of either kind is scanned in linear time.
func (m *Message) index() error {
	buf := m.buf
	n := len(buf)
	pos := m.prefix
	cr, lf := -1, -1
	for pos < n {
		if len(m.segs) == m.limits.MaxSegments {
			return newError(ErrTooLarge, CodeInternal, at(pos), "more than %d segments", m.limits.MaxSegments)
		}
		if cr < pos {
			cr = indexFrom(buf, pos, '\r')
		}
		if lf < pos {
			lf = indexFrom(buf, pos, '\n')
		}
		seg, err := m.scanSegment(buf, pos, min(cr, lf), len(m.segs))
		if err != nil {
			return err
		}
		m.segs = append(m.segs, seg)
		pos = int(seg.next)
	}
	return nil
}

// indexFrom is the offset of the first c in buf at or after pos, or
// len(buf).
func indexFrom(buf []byte, pos int, c byte) int {
	if i := bytes.IndexByte(buf[pos:], c); i >= 0 {
		return pos + i
	}
	return len(buf)
}

// scanSegment indexes segment number idx (0-based), whose content is
// buf[pos:end] (m.buf, or a segment's new bytes before an edit puts them
// in place), and appends its field separators to m.seps. Segment 0 is
// MSH, whose MSH-2 is not split.
func (m *Message) scanSegment(buf []byte, pos, end, idx int) (segment, error) {
	fs := m.delims.Field
	maxSeps := int32(m.limits.MaxFieldsPerSegment)
	seg := segment{start: int32(pos), end: int32(end), sep0: int32(len(m.seps))}
	i := pos
	if idx == 0 {
		// MSH-1 is the separator itself and MSH-2 holds the repetition
		// character as data: index both without counting repetitions.
		m.seps = append(m.seps, 3)
		i = min(pos+4+m.encLen, end)
	}
	fields := i
	for ; i < end; i++ {
		if buf[i] != fs {
			continue
		}
		if int32(len(m.seps))-seg.sep0 >= maxSeps {
			return seg, newError(ErrTooLarge, CodeInternal, at(i), "segment %d has more than %d fields", idx+1, maxSeps)
		}
		m.seps = append(m.seps, int32(i-pos))
	}
	// Repetitions are limited per field; a segment with fewer in all its
	// fields together, which is nearly every one, needs no closer look.
	if rep := m.delims.Repetition; bytes.Count(buf[fields:end], []byte{rep}) >= m.limits.MaxRepetitions {
		reps := 0
		for k := fields; k < end; k++ {
			switch buf[k] {
			case fs:
				reps = 0
			case rep:
				if reps++; reps >= m.limits.MaxRepetitions {
					return seg, newError(ErrTooLarge, CodeInternal, at(k), "a field in segment %d has more than %d repetitions", idx+1, m.limits.MaxRepetitions)
				}
			}
		}
	}
	i = end
	for i < len(buf) && (buf[i] == '\r' || buf[i] == '\n') {
		i++
	}
	seg.next = int32(i)
	seg.sep1 = int32(len(m.seps))
	if err := m.checkSegmentName(buf, seg, idx); err != nil {
		return seg, err
	}
	return seg, nil
}

// checkSegmentName requires a three-character segment ID of capital
// letters and digits, followed by a field separator or the segment's end.
func (m *Message) checkSegmentName(buf []byte, seg segment, idx int) error {
	name := buf[seg.start:seg.end]
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
	return string(name) == "MSH" || string(name) == "BHS" || string(name) == "FHS" // compared in place, not converted
}

// isEnvelopeName reports MSH and the batch segments FHS, BHS, BTS, FTS,
// which may not stand inside a message.
func isEnvelopeName(name []byte) bool {
	return isHeaderName(name) || string(name) == "BTS" || string(name) == "FTS"
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
// shares m's bytes and copies only the index: far cheaper than parsing
// again. The next edit of either copies the bytes first.
func (m *Message) Clone() *Message {
	c := &Message{}
	m.CloneInto(c)
	return c
}

// CloneInto makes c a clone of m (see Clone), reusing c's memory for the
// index. Bytes that c returned before stay as they were: c stops
// referring to them rather than writing them.
func (m *Message) CloneInto(c *Message) {
	m.owned = false // m's bytes are shared now
	segs, seps := append(c.segs[:0], m.segs...), append(c.seps[:0], m.seps...)
	scratch, scratchBytes, segBytes := c.scratch, c.scratchBytes, c.segBytes
	*c = *m
	c.segs, c.seps = segs, seps
	c.scratch, c.scratchBytes, c.segBytes = scratch[:0], scratchBytes[:0], segBytes[:0]
}
