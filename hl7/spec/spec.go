package spec

import (
	"strings"
	"sync"

	"github.com/hl7broker/hl7broker/hl7"
)

// Field is a segment's field or a data type's component.
type Field struct {
	Name     string // "Patient Name"
	Type     string // its data type: XPN
	Required bool
	// Repeats is how many times it may repeat: 1 not at all, 0 any
	// number, n up to n.
	Repeats int
	Len     int // the maximum length, 0 unknown
	Table   int // the HL7 or user table of its values, 0 none
}

// Segment is a segment's definition: PID, "Patient Identification".
type Segment struct {
	ID, Name string
	Fields   []Field // Fields[0] is field 1 (PID-1)

	types []*DataType // each field's data type, resolved once (nil: not defined)
}

// DataType is a data type's definition; a primitive (ST, NM) has no
// components.
type DataType struct {
	ID, Name   string
	Components []Field

	types []*DataType // each component's data type, resolved once
	// checked: a value of this type has something to check (a format, a
	// table), itself or in a component.
	checked bool
}

// Structure is a message structure (ADT_A01, ORU_R01): its segments and
// groups in order.
type Structure struct {
	ID, Name string
	Items    []Item
}

// Item is a segment or (with Children) a group of a structure; Max 0 is
// any number.
type Item struct {
	Name     string
	Desc     string // a group's description
	Min, Max int
	Children []Item
}

// Group says whether the item is a group of segments.
func (it Item) Group() bool { return len(it.Children) > 0 }

// Table is an HL7-defined table of codes.
type Table struct {
	ID     int
	Name   string
	Values map[string]string // code -> meaning
}

// Version is one version's definitions.
type Version struct {
	ID         string
	Segments   map[string]*Segment
	Types      map[string]*DataType
	Structures map[string]*Structure
}

// versions builds each version's definitions, by ID (the generated
// files register them); built holds those built once asked for.
var (
	versions = map[string]func() *Version{}
	mu       sync.Mutex
	built    = map[string]*Version{}
)

// Versions lists the versions defined, oldest first.
func Versions() []string {
	return []string{"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1"}
}

// Default is the version used for a message that names none this
// package knows.
const Default = "2.5.1"

// Lookup returns the definitions of version (MSH-12's first component:
// "2.5.1"), or of the nearest earlier version defined (2.8 -> 2.7.1,
// 2.3.2 -> 2.3.1), or Default's; exact says whether it is the version
// asked for. Each version is built the first time it is asked for.
func Lookup(version string) (v *Version, exact bool) {
	id := nearest(version)
	mu.Lock()
	defer mu.Unlock()
	if v = built[id]; v == nil {
		v = versions[id]()
		v.resolve()
		built[id] = v
	}
	return v, id == version
}

func nearest(version string) string {
	version, _, _ = strings.Cut(version, "^")
	version = strings.TrimSpace(version)
	if _, ok := versions[version]; ok {
		return version
	}
	best := ""
	if strings.HasPrefix(version, "2.") {
		for _, id := range Versions() {
			if compareVersions(id, version) <= 0 {
				best = id
			}
		}
	}
	if best == "" {
		return Default
	}
	return best
}

// compareVersions orders "2.3.1" and "2.10" as numbers, part by part.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		x, y := part(pa, i), part(pb, i)
		if x != y {
			return x - y
		}
	}
	return 0
}

func part(p []string, i int) int {
	if i >= len(p) {
		return -1
	}
	n := 0
	for _, c := range p[i] {
		if c < '0' || c > '9' {
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// resolve links each field and component to its data type's definition.
func (v *Version) resolve() {
	for _, s := range v.Segments {
		s.types = make([]*DataType, len(s.Fields))
		for i, f := range s.Fields {
			s.types[i] = v.Types[f.Type]
		}
	}
	for _, t := range v.Types {
		t.types = make([]*DataType, len(t.Components))
		t.checked = checkedType(t.ID)
		for i, c := range t.Components {
			t.types[i] = v.Types[c.Type]
			t.checked = t.checked || checkedType(c.Type) && (c.Type != "ID" && c.Type != "IS" || checkedTables[c.Table])
		}
	}
}

// checkedType: values of primitive type typ are checked (a format, or a
// table's codes).
func checkedType(typ string) bool {
	switch typ {
	case "DT", "DTM", "TS", "NM", "SI", "ID", "IS":
		return true
	}
	return false
}

// Segment returns segment id's definition, nil if the version has none.
func (v *Version) Segment(id string) *Segment { return v.Segments[id] }

// Field returns field n (1-based) of segment id, or nil.
func (v *Version) Field(segment string, n int) *Field {
	s := v.Segments[segment]
	if s == nil || n < 1 || n > len(s.Fields) {
		return nil
	}
	return &s.Fields[n-1]
}

// Component returns component n (1-based) of data type typ, or nil.
func (v *Version) Component(typ string, n int) *Field {
	t := v.Types[typ]
	if t == nil || n < 1 || n > len(t.Components) {
		return nil
	}
	return &t.Components[n-1]
}

var (
	tablesOnce sync.Once
	tables     map[int]*Table
)

// HL7Table returns HL7-defined table id (1: Administrative Sex), or nil.
func HL7Table(id int) *Table {
	tablesOnce.Do(func() { tables = hl7Tables() })
	return tables[id]
}

// Namer names the places of m's version (its MSH-12, the nearest earlier
// one defined) as hl7.EncodeJSONNamed asks: a segment's name, a field's,
// a component's by the field's data type, a subcomponent's by the
// component's.
func Namer(m *hl7.Message) hl7.Namer {
	v := lookupBytes(m.Value(hl7.PathMSH12))
	return func(segment string, field, component, sub int) string {
		s := v.Segment(segment)
		if s == nil {
			return ""
		}
		if field == 0 {
			return s.Name
		}
		f := v.Field(segment, field)
		switch {
		case f == nil:
			return ""
		case component == 0:
			return f.Name
		}
		c := v.Component(f.Type, component)
		switch {
		case c == nil:
			return ""
		case sub == 0:
			return c.Name
		}
		if sc := v.Component(c.Type, sub); sc != nil {
			return sc.Name
		}
		return ""
	}
}
