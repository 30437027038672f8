package hl7

import "strconv"

// Ack is a received acknowledgement, read so a sender can check it.
type Ack struct {
	Code      AckCode // MSA-1
	ControlID string  // MSA-2: must equal the MSH-10 that was sent
	Text      string  // MSA-3
	Errors    []AckError
	Message   *Message
}

// AckError is one ERR segment (or MSA-6 in old ACKs).
type AckError struct {
	Code     ErrorCode // 0 when absent or not a number
	CodeText string
	Severity Severity // 0 when absent (before v2.5)
	Location string   // as written: SEG^seq^field...
	Text     string   // ERR-8 user message, else ERR-7 diagnostics
}

// Positive reports AA or CA.
func (a *Ack) Positive() bool { return a.Code.Positive() }

var (
	pathMSA1  = MustParsePath("MSA-1")
	pathMSA2  = MustParsePath("MSA-2")
	pathMSA3  = MustParsePath("MSA-3")
	pathMSA61 = MustParsePath("MSA-6.1")
	pathMSA62 = MustParsePath("MSA-6.2")
)

// ParseAck reads an ACK: MSA-1 to MSA-3 and every ERR, in either ERR
// layout. It fails with ErrNotAck when there is no MSA or MSA-1 is not a
// table 0008 code, or with the parse error.
func ParseAck(data []byte) (*Ack, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	a := &Ack{Message: m, Code: AckCode(m.ValueString(pathMSA1)), ControlID: m.ValueString(pathMSA2), Text: m.ValueString(pathMSA3)}
	switch a.Code {
	case AA, AE, AR, CA, CE, CR:
	default:
		if !m.Has(pathMSA1) {
			return nil, newError(ErrNotAck, CodeSegmentSequence, Location{Segment: "MSA", Sequence: 1, Offset: -1}, "no MSA segment")
		}
		return nil, newError(ErrNotAck, CodeTableValueNotFound, Location{Segment: "MSA", Sequence: 1, Field: 1, Offset: -1}, "MSA-1 is not AA, AE, AR, CA, CE or CR")
	}
	if code := m.ValueString(pathMSA61); code != "" {
		a.Errors = append(a.Errors, AckError{Code: atoiCode(code), CodeText: m.ValueString(pathMSA62)})
	}
	occ := 0
	for seg := range m.SegmentsNamed("ERR") {
		occ++
		a.Errors = append(a.Errors, readERR(m, occ, seg.FieldCount())...)
	}
	return a, nil
}

func readERR(m *Message, occ, fields int) []AckError {
	at := func(field, rep, comp, sub int) string {
		return m.ValueString(Path{Segment: "ERR", Occurrence: occ, Field: field, Repetition: rep, Component: comp, Subcomponent: sub})
	}
	if fields >= 3 { // v2.5 and later
		e := AckError{Code: atoiCode(at(3, 1, 1, 0)), CodeText: at(3, 1, 2, 0), Text: at(8, 0, 0, 0)}
		if sev := at(4, 0, 0, 0); len(sev) == 1 {
			e.Severity = Severity(sev[0])
		}
		if e.Text == "" {
			e.Text = at(7, 0, 0, 0)
		}
		raw, _ := m.Raw(Path{Segment: "ERR", Occurrence: occ, Field: 2, Repetition: 1})
		e.Location = string(raw)
		return []AckError{e}
	}
	var errs []AckError
	for rep := range m.Count(Path{Segment: "ERR", Occurrence: occ, Field: 1}) {
		r := rep + 1
		loc := at(1, r, 1, 0)
		for c := 2; c <= 3; c++ {
			if v := at(1, r, c, 0); v != "" {
				loc += "^" + v
			}
		}
		errs = append(errs, AckError{Code: atoiCode(at(1, r, 4, 1)), CodeText: at(1, r, 4, 2), Location: loc})
	}
	return errs
}

func atoiCode(s string) ErrorCode {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return ErrorCode(n)
}
