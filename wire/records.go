package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// The records of the streams, one recipe each: what headers an HL7_IN
// record, an HL7_OUT copy and a dead letter carry. Every writer (ingest,
// the router, delivery workers, replays) builds its records here, so
// that a header is named and formatted in one place. The message-ID
// recipes of each hop are beside them (IngestID, CopyID, DeadLetterID,
// ReplayID).

// InRecord is what an HL7_IN record says of its message, besides the
// message itself. Empty fields are left out.
type InRecord struct {
	ControlID, SendingApp, SendingFac, Type, Event, Version string
	Listener, RemoteAddr                                    string // the listener or source, and the sender's address
	ReceivedAt                                              time.Time
	// A message read from a file: the file's name, its SHA-256 and the
	// message's place in it.
	File, FileDigest string
	FileIndex        int
	// A message a database source built from a row: the row's place
	// (RowPlace: what the source resumes after, and marks done).
	Row string
}

// Header is the record's headers.
func (r InRecord) Header() nats.Header {
	h := nats.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(HeaderControlID, r.ControlID)
	set(HeaderSendingApp, r.SendingApp)
	set(HeaderSendingFac, r.SendingFac)
	set(HeaderType, r.Type)
	set(HeaderEvent, r.Event)
	set(HeaderVersion, r.Version)
	set(HeaderListener, r.Listener)
	set(HeaderRemoteAddr, r.RemoteAddr)
	if !r.ReceivedAt.IsZero() {
		h.Set(HeaderReceivedAt, FormatTime(r.ReceivedAt))
	}
	if r.FileDigest != "" {
		set(HeaderFile, r.File)
		h.Set(HeaderFileDigest, r.FileDigest)
		h.Set(HeaderFileIndex, strconv.Itoa(r.FileIndex))
	}
	set(HeaderRow, r.Row)
	return h
}

// FormatTime is how the records write a time: UTC, RFC 3339 with
// nanoseconds.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// CopyHeader is an HL7_OUT copy's headers: its input's own headers (h,
// NATS's control headers left out), the route that made it and the
// input's HL7_IN sequence.
func CopyHeader(h nats.Header, route string, inSeq uint64) nats.Header {
	out := OwnHeaders(h)
	out.Set(HeaderRoute, route)
	out.Set(HeaderInSeq, strconv.FormatUint(inSeq, 10))
	return out
}

// Letter is why a message is in the dead-letter queue.
type Letter struct {
	Destination string // the destination that gave up, or TransformDLQ:route; "" for a transform's (the subject says)
	Reason      string
	Attempts    int
	At          time.Time
}

// Mark writes the letter's headers on h.
func (l Letter) Mark(h nats.Header) {
	if l.Destination != "" {
		h.Set(HeaderDestination, l.Destination)
	}
	h.Set(HeaderDLQReason, l.Reason)
	h.Set(HeaderDLQAttempts, strconv.Itoa(l.Attempts))
	h.Set(HeaderDLQTime, FormatTime(l.At))
}

// Unmark removes a dead letter's headers from h: a letter replayed is a
// message again.
func Unmark(h nats.Header) {
	for _, k := range []string{HeaderDLQReason, HeaderDLQAttempts, HeaderDLQTime, HeaderDestination} {
		h.Del(k)
	}
}

// VarsRoom bounds a copy's variables as stored (of HeaderRoom).
const VarsRoom = 32 << 10

// ErrVarsTooLarge is variables that do not fit VarsRoom.
var ErrVarsTooLarge = fmt.Errorf("the variables the scripts set exceed %d KiB", VarsRoom>>10)

// VarsHeader is the header carrying a copy's variables (nil when there
// are none).
func VarsHeader(vars map[string]string) (nats.Header, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(vars)
	if err != nil {
		return nil, err
	}
	if len(b) > VarsRoom {
		return nil, ErrVarsTooLarge
	}
	return nats.Header{HeaderVars: []string{string(b)}}, nil
}

// Vars are the variables a copy carries (nil when none or unreadable).
func Vars(h nats.Header) map[string]string {
	v := h.Get(HeaderVars)
	if v == "" {
		return nil
	}
	var vars map[string]string
	if json.Unmarshal([]byte(v), &vars) != nil {
		return nil
	}
	return vars
}
