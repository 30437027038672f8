package hl7

import "strconv"

// Path addresses a segment, field, repetition, component or subcomponent
// the way analysts write it: PID-5, PID-5.1, PID-3[2].1, OBX[3]-5,
// PID-3.4.2, MSH-9.2. Numbers are 1-based; a zero means "not given".
// Mirth's dotted form (PID.5.1) is accepted too.
//
// A field without [n] and without a component (PID-3) means the whole
// field, every repetition; with a component (PID-3.1) it means the first
// repetition. MSH-1 and MSH-2 are the field separator and the encoding
// characters, as HL7 counts them.
type Path struct {
	Segment      string
	Occurrence   int // which segment of that name, 1-based; 0 means the first
	Field        int
	Repetition   int
	Component    int
	Subcomponent int
	text         string
}

// String returns the path as it was written.
func (p Path) String() string { return p.text }

// ParsePath parses a path such as "PID-3[2].1". It allocates nothing.
func ParsePath(s string) (Path, error) {
	p := Path{text: s}
	bad := func(reason string) (Path, error) { return Path{}, &PathError{Path: s, Reason: reason} }
	if len(s) < 3 {
		return bad("want a three-character segment ID such as PID")
	}
	for i := 0; i < 3; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return bad("want a three-character segment ID of capital letters and digits")
		}
	}
	p.Segment = s[:3]
	rest := s[3:]
	var ok bool
	if p.Occurrence, rest, ok = bracket(rest); !ok {
		return bad("segment occurrence must be [n] with n >= 1")
	}
	if rest == "" {
		return p, nil
	}
	if rest[0] != '-' && rest[0] != '.' {
		return bad("want '-' and a field number after the segment")
	}
	if p.Field, rest, ok = number(rest[1:]); !ok {
		return bad("field number must be >= 1")
	}
	if p.Repetition, rest, ok = bracket(rest); !ok {
		return bad("repetition must be [n] with n >= 1")
	}
	if rest != "" {
		if rest[0] != '.' {
			return bad("want '.' and a component number after the field")
		}
		if p.Component, rest, ok = number(rest[1:]); !ok {
			return bad("component number must be >= 1")
		}
	}
	if rest != "" {
		if rest[0] != '.' {
			return bad("want '.' and a subcomponent number after the component")
		}
		if p.Subcomponent, rest, ok = number(rest[1:]); !ok {
			return bad("subcomponent number must be >= 1")
		}
	}
	if rest != "" {
		return bad("unexpected text after the subcomponent")
	}
	if p.Segment == "MSH" && (p.Field == 1 || p.Field == 2) && (p.Repetition > 1 || p.Component > 0) {
		return bad("MSH-1 and MSH-2 have no repetitions or components")
	}
	return p, nil
}

// MustParsePath is ParsePath for paths written in code; it panics on a bad path.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// number reads a decimal >= 1 of at most 6 digits.
func number(s string) (int, string, bool) {
	i := 0
	for i < len(s) && i < 7 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 6 {
		return 0, s, false
	}
	n, _ := strconv.Atoi(s[:i])
	return n, s[i:], n >= 1
}

// bracket reads an optional [n]; absent gives 0.
func bracket(s string) (int, string, bool) {
	if s == "" || s[0] != '[' {
		return 0, s, true
	}
	n, rest, ok := number(s[1:])
	if !ok || rest == "" || rest[0] != ']' {
		return 0, s, false
	}
	return n, rest[1:], true
}

// wholeField reports a path to a field with every repetition (PID-3).
func (p Path) wholeField() bool { return p.Repetition == 0 && p.Component == 0 }

// rep is the repetition a component path means: the first when not given.
func (p Path) rep() int {
	if p.Repetition == 0 {
		return 1
	}
	return p.Repetition
}

func (p Path) occurrence() int {
	if p.Occurrence == 0 {
		return 1
	}
	return p.Occurrence
}
