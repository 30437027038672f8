package hl7

import "bytes"

// Paths the broker reads from every message's header.
var (
	PathMSH3  = MustParsePath("MSH-3")
	PathMSH4  = MustParsePath("MSH-4")
	PathMSH5  = MustParsePath("MSH-5")
	PathMSH6  = MustParsePath("MSH-6")
	PathMSH9  = MustParsePath("MSH-9")
	PathMSH91 = MustParsePath("MSH-9.1")
	PathMSH92 = MustParsePath("MSH-9.2")
	PathMSH93 = MustParsePath("MSH-9.3")
	PathMSH10 = MustParsePath("MSH-10")
	PathMSH11 = MustParsePath("MSH-11.1")
	PathMSH12 = MustParsePath("MSH-12.1")
	PathMSH15 = MustParsePath("MSH-15")
	PathMSH16 = MustParsePath("MSH-16")
	PathMSH18 = MustParsePath("MSH-18[1]")

	pathMSH11Whole = MustParsePath("MSH-11")
	pathMSH12Whole = MustParsePath("MSH-12")
)

// Type is MSH-9.1, the message type (ADT, ORU, ...).
func (m *Message) Type() string { return m.ValueString(PathMSH91) }

// Trigger is MSH-9.2, the trigger event (A01, R01, ...).
func (m *Message) Trigger() string { return m.ValueString(PathMSH92) }

// Structure is MSH-9.3, the message structure (ADT_A01, ...), often empty
// before v2.3.1.
func (m *Message) Structure() string { return m.ValueString(PathMSH93) }

// ControlID is MSH-10, which an ACK echoes in MSA-2.
func (m *Message) ControlID() string { return m.ValueString(PathMSH10) }

// ProcessingID is MSH-11.1 (P, T, D).
func (m *Message) ProcessingID() string { return m.ValueString(PathMSH11) }

// Version is MSH-12.1 (2.3, 2.5.1, ...).
func (m *Message) Version() string { return m.ValueString(PathMSH12) }

// SendingApplication is MSH-3, all components as written (decoded).
func (m *Message) SendingApplication() string { return m.ValueString(PathMSH3) }

// SendingFacility is MSH-4.
func (m *Message) SendingFacility() string { return m.ValueString(PathMSH4) }

// ReceivingApplication is MSH-5.
func (m *Message) ReceivingApplication() string { return m.ValueString(PathMSH5) }

// ReceivingFacility is MSH-6.
func (m *Message) ReceivingFacility() string { return m.ValueString(PathMSH6) }

// AcceptAckType is MSH-15 (AL, NE, ER, SU), empty in original mode.
func (m *Message) AcceptAckType() string { return m.ValueString(PathMSH15) }

// ApplicationAckType is MSH-16 (AL, NE, ER, SU), empty in original mode.
func (m *Message) ApplicationAckType() string { return m.ValueString(PathMSH16) }

// CharacterSet is the first repetition of MSH-18 (8859/1, UNICODE UTF-8, ...).
func (m *Message) CharacterSet() string { return m.ValueString(PathMSH18) }

// CheckHeader returns an *Error (ErrRequiredField, code 101) naming the
// first of MSH-9.1 (message type), MSH-10 (control ID) and MSH-12
// (version) that is empty. The trigger is not required: v2.1 ACKs and some
// queries have none.
func (m *Message) CheckHeader() error {
	for _, p := range []Path{PathMSH91, PathMSH10, PathMSH12} {
		if raw, _ := m.Raw(p); len(raw) == 0 {
			loc := Location{Segment: "MSH", Sequence: 1, Field: p.Field, Component: p.Component, Offset: -1}
			return newError(ErrRequiredField, CodeRequiredFieldMissing, loc, "MSH-%d is empty", p.Field)
		}
	}
	return nil
}

// ControlIDOf reads MSH-10 from a message's header line without parsing
// the rest: what a sender compares an ACK's MSA-2 with, at the cost of
// one segment. ok is false if data does not start with a valid MSH.
func ControlIDOf(data []byte) (id string, ok bool) {
	line := bytes.TrimLeft(bytes.TrimPrefix(data, utf8BOM), "\r\n")
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	m, err := Parse(line)
	if err != nil {
		return "", false
	}
	return m.ControlID(), true
}
