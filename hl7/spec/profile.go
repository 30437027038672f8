package spec

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hl7broker/hl7broker/hl7"
)

// A conformance profile, in the standard XML form
// (HL7v2xConformanceProfile / HL7v2xStaticDef, as NIST IGAMT and the
// Messaging Workbench export it and HAPI reads it), narrows a message
// structure: each segment, field and component has a usage (R required,
// RE required but may be empty, O optional, X not supported, C
// conditional), a cardinality, a length and a table. Profile.Check
// enforces usage, cardinality, lengths and, for HL7 tables, codes.

// Profile is a parsed message profile.
type Profile struct {
	MsgType, EventType, MsgStructID string
	items                           []profileItem
}

type profileItem struct {
	segment  *profileSegment // or a group:
	name     string
	usage    string
	min, max int // max -1: any number
	children []profileItem
}

type profileSegment struct {
	name   string
	fields []profileField
}

type profileField struct {
	name       string
	usage      string
	min, max   int
	length     int
	table      int
	components []profileField
}

// The XML, as far as Check reads it.
type xmlProfile struct {
	Static xmlStatic `xml:"HL7v2xStaticDef"`
}

type xmlStatic struct {
	MsgType     string   `xml:"MsgType,attr"`
	EventType   string   `xml:"EventType,attr"`
	MsgStructID string   `xml:"MsgStructID,attr"`
	Items       []xmlAny `xml:",any"`
}

type xmlAny struct {
	XMLName xml.Name
	Name    string   `xml:"Name,attr"`
	Usage   string   `xml:"Usage,attr"`
	Min     string   `xml:"Min,attr"`
	Max     string   `xml:"Max,attr"`
	Length  string   `xml:"Length,attr"`
	Table   string   `xml:"Table,attr"`
	Items   []xmlAny `xml:",any"`
}

// ParseProfile reads a profile in the standard XML form.
func ParseProfile(r io.Reader) (*Profile, error) {
	var x xmlProfile
	if err := xml.NewDecoder(r).Decode(&x); err != nil {
		return nil, fmt.Errorf("conformance profile: %w", err)
	}
	p := &Profile{MsgType: x.Static.MsgType, EventType: x.Static.EventType, MsgStructID: x.Static.MsgStructID}
	var err error
	if p.items, err = profileItems(x.Static.Items); err != nil {
		return nil, err
	}
	if len(p.items) == 0 {
		return nil, fmt.Errorf("conformance profile: no HL7v2xStaticDef with segments")
	}
	return p, nil
}

func profileItems(xs []xmlAny) ([]profileItem, error) {
	var out []profileItem
	for _, x := range xs {
		it := profileItem{name: x.Name, usage: strings.ToUpper(x.Usage), min: atoi(x.Min), max: card(x.Max)}
		switch x.XMLName.Local {
		case "Segment":
			seg := &profileSegment{name: x.Name}
			for _, f := range x.Items {
				if f.XMLName.Local != "Field" {
					continue
				}
				pf := profileField{name: f.Name, usage: strings.ToUpper(f.Usage), min: atoi(f.Min), max: card(f.Max), length: atoi(f.Length), table: atoi(f.Table)}
				for _, c := range f.Items {
					if c.XMLName.Local == "Component" {
						pf.components = append(pf.components, profileField{name: c.Name, usage: strings.ToUpper(c.Usage), length: atoi(c.Length), table: atoi(c.Table)})
					}
				}
				seg.fields = append(seg.fields, pf)
			}
			it.segment = seg
		case "SegGroup":
			var err error
			if it.children, err = profileItems(x.Items); err != nil {
				return nil, err
			}
		default:
			continue // MetaData, Encodings, DynamicDef…
		}
		out = append(out, it)
	}
	return out, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// card reads a cardinality's Max: "*" (or nothing) is any number.
func card(s string) int {
	if s = strings.TrimSpace(s); s == "" || s == "*" {
		return -1
	}
	return atoi(s)
}

// Applies says whether the profile is for m: its MsgType and EventType
// (when the profile names them) are m's MSH-9.1 and MSH-9.2.
func (p *Profile) Applies(m *hl7.Message) bool {
	return (p.MsgType == "" || p.MsgType == m.Type()) && (p.EventType == "" || p.EventType == m.Trigger())
}

// Check reports where m departs from the profile: segments required (R)
// and missing or unsupported (X) and present, or present more often
// than allowed; fields and components required and empty, unsupported
// and valued, repeated more than allowed, longer than their length, or
// holding a code outside their HL7 table. Segments are matched by name
// wherever they stand (the order is Validate's); never a value.
func (p *Profile) Check(m *hl7.Message) []Problem {
	c := checker{d: m.Delimiters()}
	counts := map[string]int{}
	for seg := range m.Segments() {
		counts[seg.Name()]++
	}
	p.checkItems(&c, m, p.items, counts, true)
	return c.problems
}

func (p *Profile) checkItems(c *checker, m *hl7.Message, items []profileItem, counts map[string]int, required bool) {
	for _, it := range items {
		if it.segment == nil {
			present := anyPresent(it.children, counts)
			if it.usage == "X" && present {
				c.problem(CodeSegmentSequence, firstProfileSegment(it), 0, 0, 0, 0, "group "+it.name+" is not supported by the profile")
			}
			p.checkItems(c, m, it.children, counts, required && (present || it.usage == "R"))
			continue
		}
		name, n := it.segment.name, counts[it.segment.name]
		switch {
		case it.usage == "X" && n > 0:
			c.problem(CodeSegmentSequence, name, 0, 0, 0, 0, "segment "+name+" is not supported by the profile")
			continue
		case it.usage == "R" && required && n < max(it.min, 1):
			c.problem(CodeSegmentSequence, name, 0, 0, 0, 0, "segment "+name+" is required by the profile")
		case it.max >= 0 && n > it.max:
			c.problem(CodeSegmentSequence, name, it.max+1, 0, 0, 0, fmt.Sprintf("segment %s appears %d times; the profile allows %d", name, n, it.max))
		}
		rep := 0
		for seg := range m.SegmentsNamed(name) {
			rep++
			p.checkSegment(c, seg, it.segment, rep)
		}
	}
}

func (p *Profile) checkSegment(c *checker, seg hl7.Segment, def *profileSegment, rep int) {
	name := def.name
	for i, f := range def.fields {
		n := i + 1
		if name == "MSH" && n <= 2 {
			continue
		}
		raw, _ := seg.Field(n)
		where := func() string { return location(name, 0, n, 0, 0) } // for a problem only: this runs for every field
		switch {
		case len(raw) == 0 && f.usage == "R":
			c.problem(CodeRequiredMissing, name, rep, n, 0, 0, where()+" ("+f.name+") is required by the profile")
			continue
		case len(raw) > 0 && f.usage == "X":
			c.problem(CodeSegmentSequence, name, rep, n, 0, 0, where()+" ("+f.name+") is not supported by the profile")
			continue
		case len(raw) == 0:
			continue
		}
		reps := 0
		for rest := raw; rest != nil; {
			var r []byte
			r, rest = cut(rest, c.d.Repetition)
			reps++
			if f.max >= 0 && reps > f.max {
				c.problem(CodeDataType, name, rep, n, reps, 0, fmt.Sprintf("%s (%s) repeats more than the profile's %d", where(), f.name, f.max))
				break
			}
			p.checkValue(c, name, rep, n, reps, 0, f, r)
			ci := 0
			for crest := r; crest != nil && len(f.components) > 0; {
				var part []byte
				part, crest = cut(crest, c.d.Component)
				ci++
				if ci > len(f.components) {
					break
				}
				p.checkValue(c, name, rep, n, reps, ci, f.components[ci-1], part)
			}
			for ci++; ci <= len(f.components); ci++ { // components after the last one sent
				p.checkValue(c, name, rep, n, reps, ci, f.components[ci-1], nil)
			}
		}
	}
}

// checkValue checks one repetition (comp 0) or component against its
// usage, length and table.
func (p *Profile) checkValue(c *checker, seg string, segRep, field, fieldRep, comp int, f profileField, raw []byte) {
	where := func() string { return location(seg, 0, field, 0, comp) } // for a problem only
	switch {
	case comp > 0 && len(raw) == 0 && f.usage == "R":
		c.problem(CodeRequiredMissing, seg, segRep, field, fieldRep, comp, where()+" ("+f.name+") is required by the profile")
	case comp > 0 && len(raw) > 0 && f.usage == "X":
		c.problem(CodeSegmentSequence, seg, segRep, field, fieldRep, comp, where()+" ("+f.name+") is not supported by the profile")
	case f.length > 0 && len(raw) > f.length && (comp > 0 || len(f.components) == 0):
		c.problem(CodeTooLong, seg, segRep, field, fieldRep, comp, fmt.Sprintf("%s (%s) is longer than the profile's %d", where(), f.name, f.length))
	case f.table > 0 && len(raw) > 0 && (comp > 0 || len(f.components) == 0) && !tableHas(f.table, raw):
		c.problem(CodeTableValue, seg, segRep, field, fieldRep, comp, where()+" ("+f.name+") is not a value of HL7 table "+pad4(f.table))
	}
}

func anyPresent(items []profileItem, counts map[string]int) bool {
	for _, it := range items {
		if it.segment != nil && counts[it.segment.name] > 0 || it.segment == nil && anyPresent(it.children, counts) {
			return true
		}
	}
	return false
}

func firstProfileSegment(it profileItem) string {
	for it.segment == nil && len(it.children) > 0 {
		it = it.children[0]
	}
	if it.segment != nil {
		return it.segment.name
	}
	return it.name
}
