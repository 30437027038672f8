package hl7

import (
	"errors"
	"fmt"
)

// ErrorCode is an HL7 table 0357 message error condition code.
type ErrorCode int

// HL7 table 0357 codes used by this package and its callers.
const (
	CodeSuccess              ErrorCode = 0
	CodeSegmentSequence      ErrorCode = 100
	CodeRequiredFieldMissing ErrorCode = 101
	CodeDataType             ErrorCode = 102
	CodeTableValueNotFound   ErrorCode = 103
	CodeValueTooLong         ErrorCode = 104 // from v2.7
	CodeUnsupportedType      ErrorCode = 200
	CodeUnsupportedEvent     ErrorCode = 201
	CodeUnsupportedProcID    ErrorCode = 202
	CodeUnsupportedVersion   ErrorCode = 203
	CodeUnknownKey           ErrorCode = 204
	CodeDuplicateKey         ErrorCode = 205
	CodeRecordLocked         ErrorCode = 206
	CodeInternal             ErrorCode = 207
)

var codeText = map[ErrorCode]string{
	CodeSuccess:              "Message accepted",
	CodeSegmentSequence:      "Segment sequence error",
	CodeRequiredFieldMissing: "Required field missing",
	CodeDataType:             "Data type error",
	CodeTableValueNotFound:   "Table value not found",
	CodeValueTooLong:         "Value too long",
	CodeUnsupportedType:      "Unsupported message type",
	CodeUnsupportedEvent:     "Unsupported event code",
	CodeUnsupportedProcID:    "Unsupported processing id",
	CodeUnsupportedVersion:   "Unsupported version id",
	CodeUnknownKey:           "Unknown key identifier",
	CodeDuplicateKey:         "Duplicate key identifier",
	CodeRecordLocked:         "Application record locked",
	CodeInternal:             "Application internal error",
}

// Text is the table 0357 description of the code.
func (c ErrorCode) Text() string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return "Error"
}

// Severity is HL7 table 0516: how serious an ERR entry is.
type Severity byte

const (
	SeverityError       Severity = 'E'
	SeverityWarning     Severity = 'W'
	SeverityInformation Severity = 'I'
	SeverityFatal       Severity = 'F'
)

// Location says where in a message an error is, as an ERR segment's
// error location (ERL): segment ID and sequence, field, repetition,
// component and subcomponent, all 1-based, 0 when not known. Offset is the
// byte offset in the parsed bytes, -1 when not known.
type Location struct {
	Segment      string
	Sequence     int
	Field        int
	Repetition   int
	Component    int
	Subcomponent int
	Offset       int
}

// String renders the location the way analysts write paths (PID-5.1),
// plus the byte offset when known.
func (l Location) String() string {
	if l.Segment == "" {
		if l.Offset >= 0 {
			return fmt.Sprintf("byte %d", l.Offset)
		}
		return "message"
	}
	s := l.Segment
	if l.Sequence > 1 {
		s += fmt.Sprintf("[%d]", l.Sequence)
	}
	if l.Field > 0 {
		s += fmt.Sprintf("-%d", l.Field)
		if l.Repetition > 1 {
			s += fmt.Sprintf("[%d]", l.Repetition)
		}
		if l.Component > 0 {
			s += fmt.Sprintf(".%d", l.Component)
			if l.Subcomponent > 0 {
				s += fmt.Sprintf(".%d", l.Subcomponent)
			}
		}
	}
	if l.Offset >= 0 {
		s += fmt.Sprintf(" (byte %d)", l.Offset)
	}
	return s
}

// Sentinel kinds of Error, for errors.Is. errors.As with *Error gives the
// HL7 code and location an ERR segment needs.
var (
	ErrEmpty            = errors.New("empty message")
	ErrNoMSH            = errors.New("message does not start with an MSH segment")
	ErrBadEncodingChars = errors.New("bad delimiters in MSH-1/MSH-2")
	ErrBadSegment       = errors.New("bad segment")
	ErrTooLarge         = errors.New("message exceeds a limit")
	ErrRequiredField    = errors.New("required field missing")
	ErrBatch            = errors.New("bad batch structure")
	ErrNotAck           = errors.New("not an acknowledgement")
)

// Error is a problem with a message's bytes. It never holds message
// content: Reason is fixed text written by this package, plus numbers.
type Error struct {
	Kind     error // one of the Err* sentinels
	Code     ErrorCode
	Severity Severity
	Location Location
	Reason   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("hl7: %s at %s: %s", e.Kind, e.Location, e.Reason)
}

// Unwrap lets errors.Is match the Kind sentinel.
func (e *Error) Unwrap() error { return e.Kind }

func newError(kind error, code ErrorCode, loc Location, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Severity: SeverityError, Location: loc, Reason: fmt.Sprintf(format, args...)}
}

// at returns a Location that is only a byte offset.
func at(offset int) Location { return Location{Offset: offset} }

// PathError is a bad path string or an edit a path cannot take (for
// example setting MSH-2). It is a caller's mistake, not the message's.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("hl7: path %q: %s", e.Path, e.Reason) }
