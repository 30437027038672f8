package spec

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

// HL7 table 0357's message error conditions a validation reports.
const (
	CodeSegmentSequence = 100 // a segment missing, out of order or not allowed
	CodeRequiredMissing = 101 // a required field is empty
	CodeDataType        = 102 // a value not of its data type, or too many repetitions
	CodeTableValue      = 103 // a value not in its HL7 table
	CodeTooLong         = 104 // a value longer than its length (a profile's)
)

// Problem is one way a message departs from its version's definitions:
// where (never the value) and HL7 table 0357's code.
type Problem struct {
	// Location is the place in path form: "PID", "OBX[2]-5",
	// "PID-3[2].4" (a segment's or field's repetition in brackets
	// when it is not the first).
	Location string `json:"location"`
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	// Segment, SegmentRep, Field, FieldRep and Component locate it as
	// ERR-2 does (ERL): PID^1^3^1^4.
	Segment    string `json:"-"`
	SegmentRep int    `json:"-"`
	Field      int    `json:"-"`
	FieldRep   int    `json:"-"`
	Component  int    `json:"-"`
}

// ERL is the location as ERR-2 writes it: PID^1^3 (segment, its
// repetition, field), with the field's repetition and component when
// they are known.
func (p Problem) ERL(d hl7.Delimiters) string {
	c := string(d.Component)
	s := p.Segment + c + strconv.Itoa(max(p.SegmentRep, 1))
	if p.Field > 0 {
		s += c + strconv.Itoa(p.Field)
		if p.Component > 0 || p.FieldRep > 1 {
			s += c + strconv.Itoa(max(p.FieldRep, 1))
		}
		if p.Component > 0 {
			s += c + strconv.Itoa(p.Component)
		}
	}
	return s
}

// maxProblems bounds what one message reports: enough to fix it by.
const maxProblems = 50

// Validate checks m against the definitions of its version (MSH-12; the
// nearest earlier one defined): the order of its segments and groups by
// its message structure (MSH-9.3, or MSH-9.1_MSH-9.2), required
// segments and fields, repetitions, lengths, and the formats of dates,
// times and numbers and the codes of HL7 tables. Z segments, and
// segments or structures the version does not define, are not checked.
// It returns nil for a message without problems.
func Validate(m *hl7.Message) []Problem {
	return lookupBytes(m.Value(hl7.PathMSH12)).Validate(m)
}

// lookupBytes is Lookup of a version given as bytes, without allocating
// once that version was asked for.
func lookupBytes(b []byte) *Version {
	mu.Lock()
	v := built[string(b)]
	mu.Unlock()
	if v != nil {
		return v
	}
	v, exact := Lookup(string(b))
	mu.Lock()
	if !exact && len(built) < maxRemembered { // remembered under the name asked for, too; a sender
		built[string(b)] = v // that writes a new MSH-12 each time fills no memory
	}
	mu.Unlock()
	return v
}

// maxRemembered bounds the version names lookupBytes remembers.
const maxRemembered = 64

// segName is a segment's name as bytes (its first three).
func segName(seg hl7.Segment) []byte {
	b := seg.Bytes()
	return b[:min(3, len(b))]
}

// Validate checks m against v's definitions (see Validate).
func (v *Version) Validate(m *hl7.Message) []Problem {
	c := checker{v: v, d: m.Delimiters()}
	var defs [64]*Segment // each segment's definition, in order (nil: none)
	seen := defs[:0]
	for seg := range m.Segments() {
		seen = append(seen, v.Segments[string(segName(seg))])
	}
	c.structure(m, seen)
	c.segments(m, seen)
	return c.problems
}

// segments checks each segment's fields (seen holds each one's
// definition, in order; nil: none), knowing which repetition of its kind
// each is.
func (c *checker) segments(m *hl7.Message, seen []*Segment) {
	var counts [24]struct {
		def *Segment
		n   int
	}
	kinds := counts[:0]
	i := -1
	for seg := range m.Segments() {
		i++
		def := seen[i]
		if def == nil || len(c.problems) >= maxProblems {
			continue
		}
		rep := 1
		found := false
		for k := range kinds {
			if kinds[k].def == def {
				kinds[k].n++
				rep, found = kinds[k].n, true
				break
			}
		}
		if !found {
			kinds = append(kinds, struct {
				def *Segment
				n   int
			}{def, 1})
		}
		c.segment(seg, def, rep)
	}
}

type checker struct {
	v        *Version
	d        hl7.Delimiters
	problems []Problem
	// dates, when set, makes the checker look only for dates and times
	// that are well formed but out of its range (DatesOutOfRange).
	dates *dateRange
}

// dateRange is the earliest and latest dates a DatesOutOfRange accepts,
// as YYYYMMDDHHMMSS.
type dateRange struct{ lo, hi string }

// DatesOutOfRange finds m's dates and times (its version's DT, DTM and TS
// fields and components) that are well formed but before earliest or
// after latest: a birth date in 1066, an admission in 2099. The dates
// Validate refuses (2026-02-30) are not among them. Each problem has code
// 102, its place, and no value.
func DatesOutOfRange(m *hl7.Message, earliest, latest time.Time) []Problem {
	v := lookupBytes(m.Value(hl7.PathMSH12))
	c := checker{v: v, d: m.Delimiters(), dates: &dateRange{lo: earliest.Format("20060102150405"), hi: latest.Format("20060102150405")}}
	var seen []*Segment
	for seg := range m.Segments() {
		seen = append(seen, v.Segments[string(segName(seg))])
	}
	c.segments(m, seen)
	return c.problems
}

// outOfRange says whether a well-formed date or time (YYYY[MM[DD[HH...]]])
// falls outside r, compared at its own precision.
func (r *dateRange) outOfRange(raw []byte) bool {
	n := 0
	for n < len(raw) && n < 14 && raw[n] >= '0' && raw[n] <= '9' {
		n++
	}
	if n < 4 {
		return false
	}
	d := string(raw[:n])
	return d < r.lo[:n] || d > r.hi[:n]
}

func (c *checker) add(p Problem) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, p)
	}
}

// Place is a problem's location in path form: PID-3, OBX[2]-5.1,
// PID-3[2].4 (a repetition in brackets when it is not the first).
func Place(seg string, segRep, field, fieldRep, comp int) string {
	return location(seg, segRep, field, fieldRep, comp)
}

// location is a problem's path form.
func location(seg string, segRep, field, fieldRep, comp int) string {
	var b strings.Builder
	b.WriteString(seg)
	if segRep > 1 {
		b.WriteString("[" + strconv.Itoa(segRep) + "]")
	}
	if field > 0 {
		b.WriteString("-" + strconv.Itoa(field))
		if fieldRep > 1 {
			b.WriteString("[" + strconv.Itoa(fieldRep) + "]")
		}
		if comp > 0 {
			b.WriteString("." + strconv.Itoa(comp))
		}
	}
	return b.String()
}

func (c *checker) problem(code int, seg string, segRep, field, fieldRep, comp int, reason string) {
	c.add(Problem{Location: location(seg, segRep, field, fieldRep, comp), Code: code, Reason: reason,
		Segment: seg, SegmentRep: segRep, Field: field, FieldRep: fieldRep, Component: comp})
}

// segment checks one segment's fields, read in one pass over its bytes.
func (c *checker) segment(seg hl7.Segment, def *Segment, rep int) {
	name := def.ID
	_, rest := cut(seg.Bytes(), c.d.Field) // past the name
	n := 1
	if name == "MSH" || name == "BHS" || name == "FHS" { // field 1 is the separator itself
		n = 2
	}
	for ; n <= len(def.Fields); n++ {
		var raw []byte
		if rest != nil {
			raw, rest = cut(rest, c.d.Field)
		}
		f := &def.Fields[n-1]
		if (name == "MSH" || name == "BHS" || name == "FHS") && n <= 2 { // the encoding characters
			continue
		}
		if len(raw) == 0 || (len(raw) == 2 && raw[0] == '"' && raw[1] == '"') {
			if f.Required && len(raw) == 0 && c.dates == nil {
				c.problem(CodeRequiredMissing, name, rep, n, 0, 0, "required field "+location(name, 0, n, 0, 0)+" ("+f.Name+") is empty")
			}
			continue
		}
		t := def.types[n-1]
		if f.Repeats == 0 && (t == nil || !t.checked || (t.ID == "ID" || t.ID == "IS") && !checkedTables[f.Table]) {
			continue // nothing to check in it
		}
		reps := 0
		for rest := raw; rest != nil; {
			var r []byte
			r, rest = cut(rest, c.d.Repetition)
			reps++
			if f.Repeats > 0 && reps > f.Repeats && !strings.EqualFold(f.Type, "varies") && c.dates == nil { // a varies field's shape is the query's
				c.problem(CodeDataType, name, rep, n, reps, 0, location(name, 0, n, 0, 0)+" ("+f.Name+") repeats more than "+strconv.Itoa(f.Repeats)+" times")
				break
			}
			// The standard's lengths are not checked: real messages pass
			// them all the time (a 2.5.1 OBX-2 of CWE is longer than the
			// 2 it allows; control IDs longer than MSH-10's 20), and since
			// v2.7 they are advice. A conformance profile's are rules.
			if t != nil && t.checked {
				c.value(name, rep, n, reps, 0, t, f.Type, f.Table, r, f.Name)
			}
		}
	}
}

// value checks one repetition of a field (comp 0) or a component, of
// data type typ, against its format and table; a composite's
// components one by one.
func (c *checker) value(seg string, segRep, field, fieldRep, comp int, t *DataType, typ string, table int, raw []byte, name string) {
	if t != nil && len(t.Components) > 0 {
		if comp > 0 { // a component of a composite: its subcomponents are not checked
			return
		}
		i := 0
		for rest := raw; rest != nil; {
			var part []byte
			part, rest = cut(rest, c.d.Component)
			i++
			if i > len(t.Components) || len(part) == 0 {
				continue
			}
			cd := &t.Components[i-1]
			if !checkedType(cd.Type) {
				continue
			}
			c.value(seg, segRep, field, fieldRep, i, t.types[i-1], cd.Type, cd.Table, part, cd.Name)
		}
		return
	}
	if bytes.IndexByte(raw, c.d.Component) >= 0 { // a primitive sent with components: take the first
		raw, _ = cut(raw, c.d.Component)
	}
	where := func() string { return location(seg, 0, field, 0, comp) } // for a problem only
	if c.dates != nil {
		if (typ == "DT" && validDate(raw) || (typ == "DTM" || typ == "TS") && validDateTime(raw)) && c.dates.outOfRange(raw) {
			c.problem(CodeDataType, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is a date out of range (before "+c.dates.lo[:4]+" or after "+c.dates.hi[:8]+")")
		}
		return
	}
	switch typ {
	case "DT":
		if !validDate(raw) {
			c.problem(CodeDataType, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is not a date (YYYY[MM[DD]])")
		}
	case "DTM", "TS":
		if !validDateTime(raw) {
			c.problem(CodeDataType, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is not a date and time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])")
		}
	case "NM":
		if !validNumber(raw) {
			c.problem(CodeDataType, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is not a number")
		}
	case "SI":
		if !validDigits(raw) {
			c.problem(CodeDataType, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is not a sequence number")
		}
	case "ID", "IS":
		if checkedTables[table] && !tableHas(table, raw) {
			c.problem(CodeTableValue, seg, segRep, field, fieldRep, comp, where()+" ("+name+") is not a value of HL7 table "+pad4(table))
		}
	}
}

// checkedTables are the HL7 tables whose codes are checked: those whose
// values have stayed the same across the versions (the source keeps one
// list per table, from one version; a table that grew, such as 0125's
// value types or 0076's message types, would refuse older or newer
// codes).
var checkedTables = map[int]bool{1: true, 8: true, 85: true, 103: true, 123: true, 136: true, 155: true}

// tableHas says whether HL7 table id holds code; true when the table is
// not known here (nothing to say against the value).
func tableHas(id int, code []byte) bool {
	t := HL7Table(id)
	if t == nil || len(t.Values) == 0 {
		return true
	}
	_, ok := t.Values[string(code)]
	return ok
}

func pad4(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// cut is b's part before sep and the rest after it (nil: none left).
func cut(b []byte, sep byte) (part, rest []byte) {
	if i := bytes.IndexByte(b, sep); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

func validDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validNumber(b []byte) bool {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		b = b[1:]
	}
	intPart, frac, dot := bytes.Cut(b, []byte{'.'})
	switch {
	case dot && len(intPart) == 0:
		return validDigits(frac)
	case dot && len(frac) == 0:
		return validDigits(intPart)
	case dot:
		return validDigits(intPart) && validDigits(frac)
	}
	return validDigits(intPart)
}

func num(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// validDate: YYYY, YYYYMM or YYYYMMDD, a day that exists.
func validDate(b []byte) bool {
	if !validDigits(b) || (len(b) != 4 && len(b) != 6 && len(b) != 8) {
		return false
	}
	if len(b) >= 6 {
		if mo := num(b[4:6]); mo < 1 || mo > 12 {
			return false
		}
	}
	if len(b) == 8 {
		y, mo, d := num(b[:4]), num(b[4:6]), num(b[6:8])
		if d < 1 || d > daysIn(y, mo) {
			return false
		}
	}
	return true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// validDateTime: a date, then HH, MM, SS with up to four decimals, then
// an offset +/-ZZZZ, each part optional from the right.
func validDateTime(b []byte) bool {
	if i := bytes.IndexAny(b, "+-"); i >= 0 { // the offset
		z := b[i+1:]
		if len(z) != 4 || !validDigits(z) || num(z[:2]) > 14 || num(z[2:]) > 59 {
			return false
		}
		b = b[:i]
	}
	whole, frac, dot := bytes.Cut(b, []byte{'.'})
	if dot && (len(frac) == 0 || len(frac) > 4 || !validDigits(frac) || len(whole) != 14) {
		return false
	}
	if len(whole) <= 8 {
		return validDate(whole)
	}
	if len(whole) != 10 && len(whole) != 12 && len(whole) != 14 || !validDigits(whole) || !validDate(whole[:8]) {
		return false
	}
	if num(whole[8:10]) > 23 {
		return false
	}
	if len(whole) >= 12 && num(whole[10:12]) > 59 {
		return false
	}
	return len(whole) < 14 || num(whole[12:14]) <= 60 // a leap second
}

// structure checks the order of m's segments against its message
// structure, reporting the first segment out of place and every required
// segment or group missing before it.
func (c *checker) structure(m *hl7.Message, defs []*Segment) {
	st := c.v.Structures[string(m.Value(hl7.PathMSH93))]
	if st == nil {
		var buf [16]byte
		id := append(append(append(buf[:0], m.Value(hl7.PathMSH91)...), '_'), m.Value(hl7.PathMSH92)...)
		st = c.v.Structures[string(id)]
	}
	if st == nil {
		return
	}
	var arr [64]string
	names := arr[:0]
	i := -1
	for seg := range m.Segments() {
		i++
		switch name := segName(seg); {
		case defs[i] != nil:
			names = append(names, defs[i].ID)
		case len(name) > 0 && name[0] != 'Z':
			names = append(names, string(name)) // not defined here: out of place wherever it stands
		}
	}
	s := sequence{names: names, c: c}
	s.items(st.Items, true)
	if s.pos < len(names) {
		name := names[s.pos]
		c.problem(CodeSegmentSequence, name, 0, 0, 0, 0, "segment "+name+" is out of order, or not part of "+st.ID)
	}
}

// sequence walks a message's segment names through a structure.
type sequence struct {
	names []string
	pos   int
	c     *checker
}

// items matches items from pos; report says whether missing required
// items are problems (inside a group that was entered, or at the top).
func (s *sequence) items(items []Item, report bool) {
	for _, it := range items {
		count := 0
		for it.Max == 0 || count < it.Max {
			if it.Group() {
				if !s.group(it) {
					break
				}
			} else {
				if s.pos >= len(s.names) || s.names[s.pos] != it.Name {
					break
				}
				s.pos++
			}
			count++
		}
		if count < it.Min && report {
			what := "segment " + it.Name
			if it.Group() {
				what = "group " + it.Name + " (" + it.Desc + ")"
			}
			name := it.Name
			if it.Group() {
				name = firstSegment(it)
			}
			s.c.problem(CodeSegmentSequence, name, 0, 0, 0, 0, "required "+what+" is missing")
		}
	}
}

// group enters a group when the segment at pos is one it may start
// with, and matches it; false when it does not start there.
func (s *sequence) group(it Item) bool {
	if s.pos >= len(s.names) || !mayStart(it.Children, s.names[s.pos]) {
		return false
	}
	s.items(it.Children, true)
	return true
}

// mayStart says whether items may begin with segment name: their first
// segment, or any before it that is optional.
func mayStart(items []Item, name string) bool {
	for _, it := range items {
		if it.Group() {
			if mayStart(it.Children, name) {
				return true
			}
		} else if it.Name == name {
			return true
		}
		if it.Min > 0 {
			return false
		}
	}
	return false
}

func firstSegment(it Item) string {
	for len(it.Children) > 0 {
		it = it.Children[0]
	}
	return it.Name
}
