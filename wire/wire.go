// Package wire is the broker's format in JetStream: the names of streams,
// subjects, consumers and headers, and the message-ID recipes that make
// each hop idempotent. A leaf package: every part that reads or writes
// the streams uses it, and it knows nothing of theirs.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	// SubjectRouterFence holds the router fence in HL7_OUT: a router that
	// takes over publishes a record here, and every copy a router stores
	// must find the last record here to be its own (routing.Router). No
	// destination's consumer reads it: destination names start with a
	// letter or digit.
	SubjectRouterFence = "hl7.out._fence"
	SubjectDLQ         = "hl7.dlq"
)

// InSubject is where a received message is stored:
// hl7.in.<listener>.<type>.<event>, each value made a safe token.
func InSubject(listener, typ, event string) string {
	return SubjectIn + "." + listener + "." + Token(typ) + "." + Token(event)
}

// InSubjects matches every message a listener or source stored.
func InSubjects(listener string) string { return SubjectIn + "." + listener + ".>" }

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
	// DeliveryGroup is the pinned priority group of every ordered delivery
	// consumer (fifo, or a key partition): one worker delivers a queue at
	// a time across broker instances.
	DeliveryGroup = "deliver"
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
	HeaderReceivedAt = "HL7-Received"    // RFC 3339, UTC
	HeaderFile       = "HL7-File"        // from a file source: the file's name (base name)
	HeaderFileDigest = "HL7-File-Digest" // the file's SHA-256, hex
	HeaderFileIndex  = "HL7-File-Index"  // the message's place in the file, from 0
	HeaderRow        = "HL7-Row"         // from a database source: the row's place (JSON: its high-water value or the values its mark takes)

	HeaderRoute = "HL7-Route"       // on a copy: the route that sent it
	HeaderInSeq = "HL7-In-Sequence" // on a copy: its input's HL7_IN sequence
	HeaderVars  = "HL7-Vars"        // on a copy: the variables its route's scripts set (JSON object of strings)

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

// FileMessageID identifies message index of a file (by its digest) read
// by a source: a file read again after a crash stores none of its
// messages twice, whatever their control IDs.
func FileMessageID(source, fileDigest string, index int) string {
	return source + ":file:" + fileDigest + ":" + strconv.Itoa(index)
}

// RowMessageID identifies the message a database source built from a row
// (by its place: a hash, so that no value is readable in the Msg-Id): a
// row read again stores nothing twice.
func RowMessageID(source, row string) string {
	sum := sha256.Sum256([]byte(row))
	return source + ":row:" + hex.EncodeToString(sum[:16])
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

// History: journey events, the audit trail, and state people set.
const (
	// StreamEvents holds each message's journey: batches of Event, one
	// JSON object a line, on SubjectEvents. Kept as long as HL7_IN.
	StreamEvents  = "HL7_EVENTS"
	SubjectEvents = "hl7.events"
	// StreamAudit holds the audit trail: one AuditEntry a message, on
	// SubjectAudit. Kept admin.audit_max_age (six years by default).
	StreamAudit  = "HL7_AUDIT"
	SubjectAudit = "hl7.audit"
	// StateBucket is a key-value bucket of state that outlives a restart
	// and is shared by a cluster's brokers: PausedKey(dest).
	StateBucket = "HL7_STATE"
)

// PausedKey is present in StateBucket while destination dest is paused.
func PausedKey(dest string) string { return "paused." + dest }

// Keys of alerting in StateBucket: the alerts' state (JSON, written by
// the broker that holds the lease), the lease, and one key per silenced
// rule.
const (
	AlertStateKey = "alerts.state"
	AlertLeaseKey = "alerts.lease"
)

// AlertFactsKey holds what one broker of a cluster sees (its listeners'
// last messages, its deliveries' last success and failure, its counters),
// for the broker that evaluates the alert rules. id is the broker's, made
// safe for a key.
func AlertFactsKey(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return AlertFactsPrefix + string(b)
}

// AlertFactsPrefix starts every AlertFactsKey.
const AlertFactsPrefix = "alerts.facts."

// Session is a console session as StateBucket keeps it, under
// SessionKey(a hash of the session id): whose it is (an API token's hash,
// or a person signed in through Via, oidc or ldap, with their groups:
// the role is read from them at each request), the CSRF token, and when
// it began and was last used (to the minute).
type Session struct {
	TokenHash string    `json:"token_hash,omitempty"`
	User      string    `json:"user,omitempty"`
	Via       string    `json:"via,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	CSRF      string    `json:"csrf"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"last_seen"`
}

// SavedSearch is one of a person's saved searches as StateBucket keeps
// them (a list per person, under SearchesKey): a name and the query of
// GET /api/v1/messages it stands for.
type SavedSearch struct {
	Name    string    `json:"name"`
	Query   string    `json:"query"`
	SavedAt time.Time `json:"saved_at"`
}

// SearchesKey is the key of user's saved searches: a hash of the name
// (names may hold characters a key may not).
func SearchesKey(user string) string {
	h := sha256.Sum256([]byte(user))
	return "searches." + hex.EncodeToString(h[:16])
}

// SessionPrefix starts every session's key in StateBucket.
const SessionPrefix = "session."

// SessionKey is the key of the session whose id hashes to hash.
func SessionKey(hash string) string { return SessionPrefix + hash }

// AlertSilenceKey is present in StateBucket while rule is silenced.
func AlertSilenceKey(rule string) string { return "alerts.silence." + rule }

// DLQClaimKey is present in StateBucket while a replay or purge has
// claimed dead letter id: whoever creates it first does the work.
func DLQClaimKey(id uint64) string { return "claim.dlq." + strconv.FormatUint(id, 10) }

// Headers of a replayed message.
const (
	HeaderReplayOf   = "HL7-Replay-Of"   // "message <HL7_IN seq>" or "dlq <HL7_DLQ seq>"
	HeaderReplayedBy = "HL7-Replayed-By" // the API token's name
)

// ReplayID identifies one replay: never equal to an earlier message's
// ID, so the duplicate window never swallows it.
func ReplayID(what string, seq uint64, nonce string) string {
	return "replay:" + what + ":" + strconv.FormatUint(seq, 10) + ":" + nonce
}

// Journey event kinds.
const (
	EventReceived     = "received"      // ingest stored it (or a resend of it) and answered Ack
	EventRouted       = "routed"        // the router queued its copies (Destinations; none: unrouted)
	EventAttempt      = "attempt"       // a delivery attempt that failed (Outcome retry or rejected)
	EventDelivered    = "delivered"     // the attempt that delivered it
	EventDeadLettered = "dead_lettered" // parked in HL7_DLQ (DLQ is its sequence there)
	EventReplayed     = "replayed"      // a person replayed it (By): As a new message, or to Destination
	EventPurged       = "purged"        // a person purged its dead letter DLQ
	// EventRefused: a message ingest did not store (AR/CR: refused; AE/CE:
	// the store did not take it, to be resent). Message is 0; it carries
	// what could be read of the header, the code (HL7 table 0357) and
	// the reason, never content.
	EventRefused = "refused"
)

// Event is one step of a message's journey. Message is its HL7_IN
// sequence. Fields hold names, codes, sequences and times, never content,
// with one exception: a received event's Keys hold its search keys'
// values (an MRN, say) for the index, which keeps them out of the
// journeys it shows. HL7_EVENTS is therefore as sensitive as HL7_IN.
type Event struct {
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	Message   uint64    `json:"message,omitempty"`
	Listener  string    `json:"listener,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Ack       string    `json:"ack,omitempty"` // received: the ACK code sent
	Duplicate bool      `json:"duplicate,omitempty"`

	// received, for a message stored (not a resend): what the search index
	// shows of it, so that the index need not read the message back.
	// Keys are its search keys' values (history.search_keys); the index
	// keeps them out of the journey it shows.
	Type       string              `json:"type,omitempty"`
	Trigger    string              `json:"trigger,omitempty"`
	ControlID  string              `json:"control_id,omitempty"`
	SendingApp string              `json:"sending_app,omitempty"`
	SendingFac string              `json:"sending_fac,omitempty"`
	Version    string              `json:"version,omitempty"`
	Size       int                 `json:"size,omitempty"`
	ReplayOf   string              `json:"replay_of,omitempty"`
	Keys       map[string][]string `json:"keys,omitempty"`
	// Problems are what validation found in it (listeners' and sources'
	// validation: record): places and HL7 table 0357 codes, never values.
	Problems []Problem `json:"problems,omitempty"`

	Routes       []string          `json:"routes,omitempty"`       // routed: the routes that matched
	Destinations []string          `json:"destinations,omitempty"` // routed: a copy each
	Changed      []string          `json:"changed,omitempty"`      // routed: destinations whose copy a transform changed
	OutSeqs      map[string]uint64 `json:"out_seqs,omitempty"`     // routed: each copy's HL7_OUT sequence
	Unrouted     bool              `json:"unrouted,omitempty"`

	Destination string  `json:"destination,omitempty"`
	Attempt     int     `json:"attempt,omitempty"`
	Millis      float64 `json:"ms,omitempty"`
	Outcome     string  `json:"outcome,omitempty"` // attempt: retry | rejected
	Code        string  `json:"code,omitempty"`    // the downstream's ACK code or HTTP status
	Reason      string  `json:"reason,omitempty"`
	DLQ         uint64  `json:"dlq,omitempty"`

	By string `json:"by,omitempty"` // replayed, purged: the token's name
	As uint64 `json:"as,omitempty"` // replayed: the new message's HL7_IN sequence

	// attempt, delivered: what was sent and what the downstream answered
	// (content, like Keys: the index keeps them for the message's page
	// and out of the journey it shows). Sent is set only when it is not
	// the copy's bytes as queued (an encoding, an encoder, SQL row
	// values); SentName names the file written; SentSize is the payload's
	// whole size when Sent holds only its start (SentKept), or SentUnkept;
	// Response is
	// the ACK, or the HTTP status line and the start of the body.
	Sent     []byte `json:"sent,omitempty"`
	SentName string `json:"sent_name,omitempty"`
	SentSize int    `json:"sent_size,omitempty"`
	Response []byte `json:"response,omitempty"`

	// SHA256 (hex) is, in a received event, that of the message's bytes
	// as received (a replay's too: the same bytes); in a delivered event,
	// that of the payload the destination received, whole. A digest, not
	// content: a migration's reconciliation matches its files by it.
	SHA256 string `json:"sha256,omitempty"`
}

// SentKept and ResponseKept bound what an event keeps of a payload as
// sent and of a response: an event travels in a batch of events, and a
// journey must not cost what the message does.
const (
	SentKept     = 128 << 10
	ResponseKept = 8 << 10
)

// HasContent: e carries a payload as sent or a response.
func (e *Event) HasContent() bool {
	return len(e.Sent) > 0 || len(e.Response) > 0 || e.SentName != "" || e.SentSize != 0
}

// ForJourney is e without what it says of the payload and response (and
// its digest, which the index keeps apart), as its journey shows it
// (names only: the file name stays).
func (e Event) ForJourney() Event {
	e.Sent, e.SentSize, e.Response, e.SHA256 = nil, 0, nil, ""
	return e
}

// SentUnkept, as an event's SentSize, says its payload as sent was not
// kept (Sent is empty though the payload was not the copy as queued).
const SentUnkept = -1

// WithoutContent is e without its payload and response, saying so
// (SentUnkept) when it had a payload. Its digest stays: it is no content.
func (e Event) WithoutContent() Event {
	had, sum := len(e.Sent) > 0, e.SHA256
	e = e.ForJourney()
	e.SHA256 = sum
	if had {
		e.SentSize = SentUnkept
	}
	return e
}

// Problem is one way a message departs from its version's HL7
// definitions: where (PID-3, OBX[2]-5.1) and HL7 table 0357's code,
// with why in words that hold no value.
type Problem struct {
	Location string `json:"location"`
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
}

// Head fills e's summary of a stored message from the headers it was
// stored with and its size.
func (e *Event) Head(h nats.Header, size int) {
	e.Type, e.Trigger, e.ControlID = h.Get(HeaderType), h.Get(HeaderEvent), h.Get(HeaderControlID)
	e.SendingApp, e.SendingFac, e.Version = h.Get(HeaderSendingApp), h.Get(HeaderSendingFac), h.Get(HeaderVersion)
	e.ReplayOf, e.Size = h.Get(HeaderReplayOf), size
}

// HasHead: e is a received event with a stored message's summary.
func (e *Event) HasHead() bool { return e.Kind == EventReceived && !e.Duplicate && e.Size > 0 }

// AuditEntry is one line of the audit trail: who did what, to which
// messages, with what result. Never message content.
type AuditEntry struct {
	At     time.Time `json:"at"`
	User   string    `json:"user"`   // the token's name; "" when none was valid
	Action string    `json:"action"` // e.g. message.view, dlq.replay, destination.pause, config.reload, request.refused
	Result string    `json:"result"` // ok, or why not
	IDs    []string  `json:"ids"`
	Detail string    `json:"detail,omitempty"` // a destination, a filter, a path
	Remote string    `json:"remote,omitempty"`
	// Keys are the search keys' values (history.search_keys: MRN, name…)
	// of the messages the action showed or changed, so that the trail
	// answers who viewed or replayed one patient's messages. They are
	// patient data: the trail is read by the admin role only.
	Keys map[string][]string `json:"keys,omitempty"`
}

// Bounds of an audit entry's fields: what a client sends (a path, a
// filter) is cut to these, so no request can make an entry large.
const (
	AuditMaxField = 256 // user, action, result, detail, remote: bytes each
	AuditMaxID    = 64  // each id
)

// Bounded is e with each field cut to its bound; a cut field ends with
// "…(N bytes)", N its whole length.
func (e AuditEntry) Bounded() AuditEntry {
	e.User, e.Action, e.Result = cut(e.User, AuditMaxField), cut(e.Action, AuditMaxField), cut(e.Result, AuditMaxField)
	e.Detail, e.Remote = cut(e.Detail, AuditMaxField), cut(e.Remote, AuditMaxField)
	for i, id := range e.IDs {
		if len(id) > AuditMaxID {
			ids := slices.Clone(e.IDs)
			for j := i; j < len(ids); j++ {
				ids[j] = cut(ids[j], AuditMaxID)
			}
			e.IDs = ids
			break
		}
	}
	return e
}

// cut is s if it fits in max bytes, else its start (whole UTF-8
// characters) and how long it was.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	tail := fmt.Sprintf("…(%d bytes)", len(s))
	n := max - len(tail)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + tail
}

// Describe is the event in words, without its time: what the CLI prints
// for each step of a message's journey. It names listeners, destinations,
// routes, codes and reasons, never the message's fields.
func (e Event) Describe() string {
	s := e.Kind
	switch e.Kind {
	case "received":
		if e.By != "" {
			s += " as a replay by " + e.By
		} else {
			s += fmt.Sprintf(" on %s from %s, answered %s", e.Listener, e.Remote, e.Ack)
		}
		if e.Duplicate {
			s += " (a resend: stored once)"
		}
		for _, p := range e.Problems {
			s += fmt.Sprintf("; invalid: %s (%d) %s", p.Location, p.Code, p.Reason)
		}
	case "routed":
		if len(e.Destinations) == 0 {
			s += " nowhere"
		} else {
			s += " to " + strings.Join(e.Destinations, ", ")
		}
		if len(e.Routes) > 0 {
			s += " by " + strings.Join(e.Routes, ", ")
		}
		if e.Unrouted {
			s += " (no route matched)"
		}
	case "attempt", "delivered":
		s += fmt.Sprintf(" %s attempt %d: %s %s (%.1f ms) %s", e.Destination, e.Attempt, e.Outcome, e.Code, e.Millis, e.Reason)
	case "dead_lettered":
		s += fmt.Sprintf(" %s after %d attempts: %s (dead letter %d)", e.Destination, e.Attempt, e.Reason, e.DLQ)
	case "replayed":
		s += " by " + e.By
		if e.Destination != "" {
			s += " to " + e.Destination
		}
		if e.As != 0 {
			s += fmt.Sprintf(" as message %d", e.As)
		}
		if e.DLQ != 0 {
			s += fmt.Sprintf(" from dead letter %d", e.DLQ)
		}
	case "purged":
		s += fmt.Sprintf(" dead letter %d of %s by %s", e.DLQ, e.Destination, e.By)
	}
	return strings.TrimSpace(s)
}
