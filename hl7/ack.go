package hl7

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"sync/atomic"
	"time"
)

// AckMode chooses between original (AA/AE/AR) and enhanced (CA/CE/CR)
// acknowledgement codes.
type AckMode int

const (
	// AckModeAuto is enhanced when the message has MSH-15 or MSH-16, else original.
	AckModeAuto AckMode = iota
	AckModeOriginal
	AckModeEnhanced
)

// AckCode is MSA-1 (HL7 table 0008).
type AckCode string

const (
	AA AckCode = "AA" // original mode: accepted
	AE AckCode = "AE" // original mode: error, the sender may correct and resend
	AR AckCode = "AR" // original mode: rejected
	CA AckCode = "CA" // enhanced mode: committed to safe storage
	CE AckCode = "CE" // enhanced mode: commit error
	CR AckCode = "CR" // enhanced mode: commit rejected
)

// Positive reports AA or CA.
func (c AckCode) Positive() bool { return c == AA || c == CA }

// Outcome is what the receiver decided about a message.
type Outcome int

const (
	Accepted Outcome = iota
	Errored          // AE / CE: an error; whether to resend is up to the policy the text states
	Rejected         // AR / CR: rejected as it stands
)

// Code returns MSA-1 for the outcome in the given mode (Auto counts as original).
func (o Outcome) Code(mode AckMode) AckCode {
	codes := [2][3]AckCode{{AA, AE, AR}, {CA, CE, CR}}
	row := 0
	if mode == AckModeEnhanced {
		row = 1
	}
	if o < Accepted || o > Rejected {
		o = Rejected
	}
	return codes[row][o]
}

// AckOptions describe the ACK to build.
type AckOptions struct {
	Outcome Outcome
	Mode    AckMode
	// Text goes in MSA-3 and, with an error, in ERR's user message. It is
	// the receiver's own words: never put message content in it.
	Text string
	// Err fills the ERR segment (code, severity, location). An AE/AR
	// without Err gets code 207, application internal error.
	Err *Error
	// More are further errors, an ERR segment each after Err's (a
	// validation's problems), each with its own Reason as its user
	// message.
	More []*Error
	// ControlID is the ACK's own MSH-10; empty generates a unique one.
	ControlID string
	// Time is MSH-7; zero means now.
	Time time.Time
	// SendingApplication and SendingFacility override the ACK's MSH-3 and
	// MSH-4, which otherwise echo the message's MSH-5 and MSH-6.
	SendingApplication, SendingFacility string
}

// ModeFor is the mode AckModeAuto picks for m: enhanced when MSH-15 or
// MSH-16 is present.
func ModeFor(m *Message) AckMode {
	if raw, _ := m.Raw(PathMSH15); len(raw) > 0 {
		return AckModeEnhanced
	}
	if raw, _ := m.Raw(PathMSH16); len(raw) > 0 {
		return AckModeEnhanced
	}
	return AckModeOriginal
}

// ackHeader is what an ACK copies from the message it answers, as raw
// bytes in the delimiters d.
type ackHeader struct {
	d                                  Delimiters
	sendApp, sendFac, recvApp, recvFac []byte
	trigger, controlID, procID         []byte
	version                            []byte
	enhanced                           bool
}

// BuildAck builds the ACK for m: MSH with sending and receiving swapped, a
// fresh control ID, ACK^<trigger>^ACK and m's version and delimiters; MSA
// echoing MSH-10; and, unless accepted, an ERR laid out for m's version
// (ERR-1 before v2.5, ERR-2 to ERR-8 from v2.5). Segments end in CR.
func BuildAck(m *Message, o AckOptions) []byte {
	d := m.delims
	h := ackHeader{d: d}
	raw := func(p Path) []byte { b, _ := m.Raw(p); return b }
	h.sendApp, h.sendFac = raw(PathMSH3), raw(PathMSH4)
	h.recvApp, h.recvFac = raw(PathMSH5), raw(PathMSH6)
	h.trigger, h.controlID = raw(PathMSH92), raw(PathMSH10)
	h.procID, h.version = raw(pathMSH11Whole), raw(pathMSH12Whole)
	h.enhanced = ModeFor(m) == AckModeEnhanced
	return writeAck(h, o)
}

// BuildRejectAck answers bytes that could not be parsed. It salvages what
// the MSH segment gives (sending and receiving application and facility,
// control ID, trigger, processing ID and version) and otherwise builds a
// minimal valid ACK. Its outcome is Rejected unless o says Errored.
func BuildRejectAck(data []byte, o AckOptions) []byte {
	if o.Outcome == Accepted {
		o.Outcome = Rejected
	}
	return writeAck(salvageHeader(data), o)
}

// salvageHeader reads the MSH line of bytes that failed to parse. With
// valid delimiters it copies fields as they are; with bad ones it takes
// whole fields (split on the byte after MSH) as text to escape, and no
// components.
func salvageHeader(data []byte) ackHeader {
	h := ackHeader{d: DefaultDelimiters}
	data = bytes.TrimPrefix(data, utf8BOM)
	data = bytes.TrimLeft(data, "\r\n")
	if !bytes.HasPrefix(data, []byte("MSH")) || len(data) < 4 || !validDelimiterByte(data[3]) {
		return h
	}
	line := data
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	d, _, _, err := parseDelimiters(line, 0)
	if err == nil {
		var m Message
		m.limits = DefaultLimits
		m.buf, m.delims = line, d
		if m.index() == nil {
			hh := ackHeader{d: d}
			field := func(n int, comp int) []byte {
				p := Path{Segment: "MSH", Field: n, Component: comp}
				b, _ := m.Raw(p)
				return printable(b)
			}
			hh.sendApp, hh.sendFac, hh.recvApp, hh.recvFac = field(3, 0), field(4, 0), field(5, 0), field(6, 0)
			hh.trigger, hh.controlID, hh.procID, hh.version = field(9, 2), field(10, 0), field(11, 0), field(12, 0)
			hh.enhanced = len(field(15, 0)) > 0 || len(field(16, 0)) > 0
			return hh
		}
	}
	parts := bytes.Split(line, line[3:4])
	text := func(n int) []byte { // MSH-n is parts[n-1]
		if n-1 >= len(parts) {
			return nil
		}
		return h.d.AppendEscaped(nil, string(printable(parts[n-1])))
	}
	h.sendApp, h.sendFac, h.recvApp, h.recvFac = text(3), text(4), text(5), text(6)
	h.controlID, h.procID, h.version = text(10), text(11), text(12)
	return h
}

// printable drops a salvaged value holding control bytes, and caps its length.
func printable(b []byte) []byte {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return nil
		}
	}
	if len(b) > 199 {
		return nil
	}
	return b
}

func writeAck(h ackHeader, o AckOptions) []byte {
	d := h.d
	mode := o.Mode
	if mode == AckModeAuto {
		mode = AckModeOriginal
		if h.enhanced {
			mode = AckModeEnhanced
		}
	}
	version := h.version
	if len(version) == 0 {
		version = []byte("2.5")
	}
	versionID := version // MSH-12.1, for choosing layouts
	if i := bytes.IndexByte(versionID, d.Component); i >= 0 {
		versionID = versionID[:i]
	}
	now := o.Time
	if now.IsZero() {
		now = time.Now()
	}
	ctl := o.ControlID
	if ctl == "" {
		ctl = NewControlID()
	}
	var b bytes.Buffer
	fs := func() { b.WriteByte(d.Field) }
	b.WriteString("MSH")
	fs()
	b.WriteString(d.EncodingChars())
	fs()
	if o.SendingApplication != "" || o.SendingFacility != "" {
		b.WriteString(d.EscapeString(o.SendingApplication))
		fs()
		b.WriteString(d.EscapeString(o.SendingFacility))
	} else {
		b.Write(h.recvApp)
		fs()
		b.Write(h.recvFac)
	}
	fs()
	b.Write(h.sendApp)
	fs()
	b.Write(h.sendFac)
	fs()
	b.WriteString(now.Format("20060102150405.000-0700"))
	fs()
	fs()
	b.WriteString("ACK")
	if len(h.trigger) > 0 {
		b.WriteByte(d.Component)
		b.Write(h.trigger)
		if versionAtLeast(versionID, 2, 3, 1) {
			b.WriteByte(d.Component)
			b.WriteString("ACK")
		}
	}
	fs()
	b.WriteString(d.EscapeString(ctl))
	fs()
	if len(h.procID) > 0 {
		b.Write(h.procID)
	} else {
		b.WriteByte('P')
	}
	fs()
	b.Write(version)
	b.WriteByte('\r')

	code := o.Outcome.Code(mode)
	b.WriteString("MSA")
	fs()
	b.WriteString(string(code))
	fs()
	b.Write(h.controlID)
	if o.Text != "" {
		fs()
		b.WriteString(d.EscapeString(o.Text))
	}
	b.WriteByte('\r')
	if o.Outcome != Accepted || o.Err != nil {
		writeERR(&b, d, versionID, o.Err, o.Text)
	}
	for _, e := range o.More {
		writeERR(&b, d, versionID, e, e.Reason)
	}
	return b.Bytes()
}

// writeERR writes the ERR segment for version: ERR-1 (ELD) before v2.5,
// ERR-2 (location), ERR-3 (code), ERR-4 (severity) and ERR-8 (user
// message) from v2.5.
func writeERR(b *bytes.Buffer, d Delimiters, version []byte, e *Error, text string) {
	if e == nil {
		e = &Error{Code: CodeInternal, Severity: SeverityError, Location: Location{Offset: -1}}
	}
	sev := e.Severity
	if sev == 0 {
		sev = SeverityError
	}
	codeNum := strconv.Itoa(int(e.Code))
	loc := e.Location
	num := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	b.WriteString("ERR")
	b.WriteByte(d.Field)
	if !versionAtLeast(version, 2, 5, 0) {
		// ERR-1 ELD: segment ^ sequence ^ field ^ code&text&HL70357
		seq := loc.Sequence
		if loc.Segment != "" && seq == 0 {
			seq = 1
		}
		b.WriteString(loc.Segment)
		b.WriteByte(d.Component)
		b.WriteString(num(seq))
		b.WriteByte(d.Component)
		b.WriteString(num(loc.Field))
		b.WriteByte(d.Component)
		b.WriteString(codeNum)
		b.WriteByte(d.Subcomponent)
		b.WriteString(d.EscapeString(e.Code.Text()))
		b.WriteByte(d.Subcomponent)
		b.WriteString("HL70357")
		b.WriteByte('\r')
		return
	}
	b.WriteByte(d.Field) // ERR-1 empty
	if loc.Segment != "" {
		seq := loc.Sequence
		if seq == 0 {
			seq = 1
		}
		parts := []string{loc.Segment, num(seq), num(loc.Field), num(loc.Repetition), num(loc.Component), num(loc.Subcomponent)}
		for len(parts) > 1 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		for i, p := range parts {
			if i > 0 {
				b.WriteByte(d.Component)
			}
			b.WriteString(p)
		}
	}
	b.WriteByte(d.Field) // ERR-3
	b.WriteString(codeNum)
	b.WriteByte(d.Component)
	b.WriteString(d.EscapeString(e.Code.Text()))
	b.WriteByte(d.Component)
	b.WriteString("HL70357")
	b.WriteByte(d.Field) // ERR-4
	b.WriteByte(byte(sev))
	if text != "" {
		b.Write([]byte{d.Field, d.Field, d.Field, d.Field}) // ERR-5..7 empty
		b.WriteString(d.EscapeString(text))
	}
	b.WriteByte('\r')
}

// versionAtLeast compares an HL7 version such as 2.3.1 with
// major.minor.patch. An empty or unreadable version counts as new.
func versionAtLeast(v []byte, major, minor, patch int) bool {
	want := [3]int{major, minor, patch}
	var got [3]int
	parts := bytes.SplitN(v, []byte("."), 3)
	for i, p := range parts {
		n, err := strconv.Atoi(string(p))
		if err != nil {
			return true
		}
		got[i] = n
	}
	for i := range got {
		if got[i] != want[i] {
			return got[i] > want[i]
		}
	}
	return true
}

var (
	controlPrefix  = newControlPrefix()
	controlCounter atomic.Uint64
)

func newControlPrefix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.EncodeToString(b[:])
}

// NewControlID returns a control ID unique to this process run and, with
// overwhelming likelihood, across runs: eight random characters and a
// counter, at most 20 characters (MSH-10's length before v2.7).
func NewControlID() string {
	return controlPrefix + strconv.FormatUint(controlCounter.Add(1), 10)
}
