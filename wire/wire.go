// Package wire is the broker's format in JetStream: the names of streams,
// subjects, consumers and headers, and the message-ID recipes that make
// each hop idempotent. A leaf package: every part that reads or writes
// the streams uses it, and it knows nothing of theirs.
package wire

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Streams. HL7_IN keeps every received message for history and replay;
// HL7_OUT holds one copy per destination until delivered (and a duplicate
// window longer); HL7_DLQ keeps what could not be delivered.
const (
	StreamIn  = "HL7_IN"
	StreamOut = "HL7_OUT"
	StreamDLQ = "HL7_DLQ"
)

// Subject prefixes of the three streams.
const (
	SubjectIn  = "hl7.in"
	SubjectOut = "hl7.out"
	SubjectDLQ = "hl7.dlq"
)

// InSubject is where a received message is stored:
// hl7.in.<listener>.<type>.<event>, each value made a safe token.
func InSubject(listener, typ, event string) string {
	return SubjectIn + "." + listener + "." + Token(typ) + "." + Token(event)
}

// OutSubject is a destination's HL7_OUT subject.
func OutSubject(dest string) string { return SubjectOut + "." + dest }

// PartitionSubject is partition p of a key-ordered destination's queue.
func PartitionSubject(dest string, p int) string { return OutSubject(dest) + "." + strconv.Itoa(p) }

// DLQSubject is a destination's HL7_DLQ subject (TransformDLQ for what
// the router itself dead-letters).
func DLQSubject(dest string) string { return SubjectDLQ + "." + dest }

// TransformDLQ stands for a destination in HL7_DLQ and in metrics for
// what the router dead-letters: a failed transform, a copy too large.
const TransformDLQ = "_transform"

// Token makes a value safe as one NATS subject token ("_" when empty).
func Token(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Consumers.
const (
	// RouterConsumer is HL7_IN's durable consumer; every router joins its
	// pinned priority group RouterGroup, so one routes at a time.
	RouterConsumer = "router"
	RouterGroup    = "router"
)

// DeliveryConsumer is the durable consumer of a destination's queue.
func DeliveryConsumer(dest string) string { return "deliver-" + dest }

// PartitionConsumer is the durable consumer of partition p of a
// key-ordered destination.
func PartitionConsumer(dest string, p int) string { return fmt.Sprintf("deliver-%s-%d", dest, p) }

// Headers ingest puts on every stored message; the router and the
// dead-letter queue add theirs. Values are codes, names and IDs, never
// message content beyond MSH's identifiers.
const (
	HeaderControlID  = "HL7-Control-Id"          // MSH-10
	HeaderSendingApp = "HL7-Sending-Application" // MSH-3
	HeaderSendingFac = "HL7-Sending-Facility"    // MSH-4
	HeaderType       = "HL7-Type"                // MSH-9.1
	HeaderEvent      = "HL7-Event"               // MSH-9.2
	HeaderVersion    = "HL7-Version"             // MSH-12
	HeaderListener   = "HL7-Listener"
	HeaderRemoteAddr = "HL7-Remote-Addr"
	HeaderReceivedAt = "HL7-Received" // RFC 3339, UTC

	HeaderRoute = "HL7-Route"       // on a copy: the route that sent it
	HeaderInSeq = "HL7-In-Sequence" // on a copy: its input's HL7_IN sequence

	HeaderDestination = "HL7-Destination" // on a dead letter
	HeaderDLQReason   = "HL7-DLQ-Reason"
	HeaderDLQAttempts = "HL7-DLQ-Attempts"
	HeaderDLQTime     = "HL7-DLQ-Time"
)

// HeaderRoom is what a stored message may need beside its bytes for its
// headers (ingest's, the router's, the dead-letter queue's). A listener's
// max_message_bytes plus this must fit NATS's max_payload, or a message
// the listener accepts could never be stored: the sender would be told to
// resend it forever.
const HeaderRoom = 64 << 10

// The message-ID recipes (Nats-Msg-Id), one per hop:

// IngestID identifies a received message: the listener, then a hash of
// MSH-3, MSH-4 and MSH-10 (key) and one of the message's bytes (digest).
// Only a true resend has the same ID; a different message reusing a
// control ID does not.
func IngestID(listener string, key, digest [16]byte) string {
	return listener + ":" + hex.EncodeToString(key[:]) + hex.EncodeToString(digest[:])
}

// CopyID identifies input inSeq's copy for dest: an input routed again
// adds no second copy. What the router dead-letters for a route is the
// copy for TransformDLQ + ":" + route.
func CopyID(inSeq uint64, dest string) string { return strconv.FormatUint(inSeq, 10) + ":" + dest }

// DeadLetterID identifies a dead letter of dest by its HL7_OUT sequence
// (or, when that is not known, its input's sequence).
func DeadLetterID(dest string, seq uint64) string { return fmt.Sprintf("dlq:%s:%d", dest, seq) }

// OwnHeaders copies a message's own headers, leaving out NATS's control
// headers (Nats-Msg-Id, Nats-Expected-Stream, ...): they belong to the
// publish that set them, and would make the next one fail or dedupe wrongly.
func OwnHeaders(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			out[k] = v
		}
	}
	return out
}
