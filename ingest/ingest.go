package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/tracing"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Texts of negative ACKs (MSA-3).
const (
	textStoreFailed     = "temporarily unable to store the message; resend it unchanged"
	textNotAccepted     = "message type not accepted by this listener"
	textTooLargeFmt     = "message of %d bytes exceeds this listener's limit of %d bytes"
	textTooLargeToStore = "message of %d bytes with its headers exceeds the store's max_payload: it cannot be stored as it is"
	textUnparseable     = "message could not be parsed: %s"
	textMissingHeader   = "required header field missing: %s"
	textInvalid         = "message not valid for its HL7 version (%d problems; the first: %s)"
)

// Ingest is the entry of one source (an MLLP listener today): Accept
// parses each message, checks its MSH, stores it through the Committer
// and only then answers AA (or CA). Every other outcome gets the code
// docs/ack-policy.md gives, with an ERR segment saying why; nothing is
// acknowledged positively unless stored. It is also the listener's
// mllp.Handler.
type Ingest struct {
	// Metrics, if set, counts what is received and answered.
	Metrics *Metrics
	// Reuse, if set, notices control IDs reused for other messages.
	Reuse *ReuseTracker
	// Recent, if set, answers resends within the duplicate window
	// without storing them again (JetStream's own window on HL7_IN is
	// then three store timeouts).
	Recent *Recent
	// Events, if set, records each stored message's receipt in its journey.
	Events *store.EventLog
	// SearchKeys are read from each stored message into its received
	// event, for the search index (history.search_keys, see hl7.SearchKeyPaths).
	SearchKeys map[string]hl7.Path
	// Charset, if set, checks each message's bytes against its character
	// set (a source's charset key, else MSH-18) before it is stored.
	Charset *CharsetCheck
	// Profile, if set, is the listener's conformance profile, checked
	// with validation for the messages of its type and event.
	Profile *spec.Profile
	// Rules are the listener's site rules (config's rules), checked with
	// validation.
	Rules config.SiteRules

	listener  config.ListenerConfig
	committer store.Committer
	log       zerolog.Logger
	limits    hl7.Limits
	mode      hl7.AckMode
	accept    map[string]bool // empty: all types
}

// CharsetCheck is a source's character set check: a mismatch is logged
// (where, and how many bytes; never the text) and counted, and the
// message is stored as it is.
type CharsetCheck struct {
	Configured string                 // the source's charset; "" for MSH-18's
	Warnings   *prometheus.CounterVec // source; nil: not counted
}

// checkCharset runs in.Charset on m, about to be stored.
func (in *Ingest) checkCharset(m *hl7.Message, frame []byte, o Origin) {
	log := func(e *zerolog.Event) *zerolog.Event {
		e = e.Str("control_id", m.ControlID())
		if o.File != "" {
			e = e.Str("file", o.File).Int("index", o.FileIndex)
		}
		return e
	}
	cs, err := m.ResolveCharset(in.Charset.Configured, true)
	if err != nil {
		log(in.log.Warn()).Str("reason", strings.TrimPrefix(err.Error(), "hl7: ")).Msg("MSH-18 names an unknown character set; bytes stored as they are")
		return
	}
	for _, w := range cs.Check(frame) {
		if in.Charset.Warnings != nil {
			in.Charset.Warnings.WithLabelValues(in.listener.Name).Inc()
		}
		log(in.log.Warn()).Str("charset", cs.Name).Str("reason", w.String()).Msg("bytes do not match the character set; stored as they are")
	}
}

// Origin is where a message came from, as far as its source knows.
type Origin struct {
	RemoteAddr string // the sender's address; "" when none (a file)
	// A message read from a file: the file's base name, its SHA-256 (hex)
	// and the message's place in it. With FileDigest set, the message is
	// identified by file and place (wire.FileMessageID), not by its
	// control ID: reading a file again stores none of it twice.
	File       string
	FileDigest string
	FileIndex  int
	// Row, from a database source, is the row's place: the message is
	// identified by it (wire.RowMessageID), so a row read again stores
	// nothing twice.
	Row string
}

// Outcome is what became of one message, for sources that report on
// each (a file's error report): its ACK and, when it was not stored, why.
type Outcome struct {
	Ack       []byte
	Code      string // MSA-1 of Ack
	Stored    bool   // stored now or before (Duplicate)
	Duplicate bool
	Sequence  uint64     // HL7_IN sequence when stored
	ControlID string     // MSH-10, "" when unparseable
	Err       *hl7.Error // why it was refused; nil when stored or not stored for the store's sake

	received wire.Event // its journey's first event (Kind "": none), recorded once the ACK is final
	refused  wire.Event // for a message not stored: what the history keeps of it (Kind "": none)
}

// Metrics are the series Ingest counts into, labelled by source name.
type Metrics struct {
	Received     *prometheus.CounterVec   // source
	Acks         *prometheus.CounterVec   // source, code
	StoreSeconds *prometheus.HistogramVec // source
	ReusedIDs    *prometheus.CounterVec   // source
	LastMessage  *prometheus.GaugeVec     // source: when the last message arrived (Unix seconds); nil: not kept
	Problems     *prometheus.CounterVec   // source, code: validation's problems; nil: not counted
}

// New returns the entry of one listener.
func New(l config.ListenerConfig, c store.Committer, log zerolog.Logger) *Ingest {
	in := &Ingest{listener: l, committer: c, log: log.With().Str("listener", l.Name).Logger(),
		limits: hl7.Limits{MaxMessageBytes: l.MaxMessageBytes}, mode: ackMode(l.AckMode)}
	if len(l.AcceptTypes) > 0 {
		in.accept = map[string]bool{}
		for _, t := range l.AcceptTypes {
			in.accept[t] = true
		}
	}
	return in
}

func ackMode(s string) hl7.AckMode {
	switch s {
	case "original":
		return hl7.AckModeOriginal
	case "enhanced":
		return hl7.AckModeEnhanced
	}
	return hl7.AckModeAuto
}

// Accept takes one message as received (framing removed) and returns the
// ACK to send back: positive only once the message is stored. See
// docs/ack-policy.md.
func (in *Ingest) Accept(ctx context.Context, raw []byte, o Origin) []byte {
	return in.Receive(ctx, raw, o).Ack
}

// Receive is Accept with the whole outcome.
func (in *Ingest) Receive(ctx context.Context, raw []byte, o Origin) Outcome {
	var out Outcome
	in.answer(ctx, raw, o, &out)
	in.recordReceived(&out)
	in.count(out.Code)
	return out
}

// ReceiveAll receives several messages from one sender (an HTTP
// request's body) that wait for their ACKs together: with a committer
// that does not flush (store.NATS.BatchCommitter), one call of sync then
// makes them all durable. Only after it does an ACK say AA or CA; if it
// fails, each message it covered is answered AE (CE), to be resent (the
// store recognises what it kept).
func (in *Ingest) ReceiveAll(ctx context.Context, raws [][]byte, o Origin, sync func(context.Context) error) []Outcome {
	outs := make([]Outcome, len(raws))
	for i, raw := range raws {
		in.answer(ctx, raw, o, &outs[i])
	}
	if err := sync(ctx); err != nil {
		for i := range outs {
			if !outs[i].Stored {
				continue
			}
			var m hl7.Message
			if m.ParseWith(raws[i], in.limits) != nil {
				continue // it parsed when it was stored
			}
			in.log.Error().Str("control_id", m.ControlID()).Str("reason", err.Error()).Msg("storing failed: the flush to disk failed; sender told to resend")
			outs[i].reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Errored, Mode: in.mode, Text: textStoreFailed,
				Err: &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}}}))
			outs[i].Stored, outs[i].Duplicate = false, false
		}
	}
	for i := range outs {
		in.recordReceived(&outs[i])
		in.count(outs[i].Code)
	}
	return outs
}

// recordReceived records a stored message's received event with the ACK
// its sender got (AE when a later flush failed), or a message's refusal.
func (in *Ingest) recordReceived(out *Outcome) {
	if out.received.Kind == "" {
		if out.refused.Kind != "" {
			out.refused.Ack = out.Code
			in.Events.Record(out.refused)
			out.refused = wire.Event{}
		}
		return
	}
	out.received.Ack = out.Code
	in.Events.Record(out.received)
	out.received = wire.Event{}
}

// Check runs Accept's checks on a message without storing it: parse,
// MSH, accepted type. It returns MSH-10 (when readable) and why the
// message would be refused, nil when it would be stored.
func (in *Ingest) Check(raw []byte) (controlID string, refused *hl7.Error) {
	var m hl7.Message
	return in.check(raw, &m)
}

// check is Check parsing into m, for a caller that reads m afterwards.
func (in *Ingest) check(raw []byte, m *hl7.Message) (controlID string, refused *hl7.Error) {
	stage, refused := in.checkStage(raw, m)
	if stage == unparsed {
		return "", refused
	}
	return m.ControlID(), refused
}

// What check found wrong, by the check that failed.
type checkStage int

const (
	checked     checkStage = iota // nothing: the message is to be stored
	unparsed                      // not an HL7 message (m holds nothing)
	badHeader                     // a required field of MSH missing
	notAccepted                   // a type the listener does not take
)

// checkStage runs Accept's checks on raw, parsed into m, and says which
// failed and why.
func (in *Ingest) checkStage(raw []byte, m *hl7.Message) (checkStage, *hl7.Error) {
	if err := m.ParseWith(raw, in.limits); err != nil {
		return unparsed, parseError(err)
	}
	if err := m.CheckHeader(); err != nil {
		var he *hl7.Error
		errors.As(err, &he)
		return badHeader, he
	}
	if in.accept != nil && !in.accept[m.Type()] {
		return notAccepted, notAcceptedError()
	}
	return checked, nil
}

// parseError is why a message could not be parsed, as an HL7 error.
func parseError(err error) *hl7.Error {
	var he *hl7.Error
	if !errors.As(err, &he) {
		he = &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}, Reason: "unknown parse error"}
	}
	return he
}

func notAcceptedError() *hl7.Error {
	return &hl7.Error{Code: hl7.CodeUnsupportedType, Severity: hl7.SeverityError, Reason: textNotAccepted,
		Location: hl7.Location{Segment: "MSH", Sequence: 1, Field: 9, Component: 1, Offset: -1}}
}

// ServeMLLP is Accept for a frame of an MLLP connection.
func (in *Ingest) ServeMLLP(ctx context.Context, conn *mllp.ConnInfo, frame []byte) []byte {
	return in.Accept(ctx, frame, Origin{RemoteAddr: conn.RemoteAddr.String()})
}

// count records a received message and its ACK's MSA-1.
func (in *Ingest) count(code string) {
	if in.Metrics == nil {
		return
	}
	in.Metrics.Received.WithLabelValues(in.listener.Name).Inc()
	in.Metrics.Acks.WithLabelValues(in.listener.Name, code).Inc()
	if in.Metrics.LastMessage != nil {
		in.Metrics.LastMessage.WithLabelValues(in.listener.Name).SetToCurrentTime()
	}
}

// reply sets the ACK the sender gets, and its MSA-1, read once.
func (out *Outcome) reply(ack []byte) {
	out.Ack, out.Code = ack, ackCode(ack)
}

// ackCode reads MSA-1 from an ACK this package built.
func ackCode(ack []byte) string {
	i := bytes.Index(ack, []byte("\rMSA"))
	if i < 0 || len(ack) < i+7 {
		return "unknown"
	}
	return string(ack[i+5 : i+7])
}

func (in *Ingest) answer(ctx context.Context, frame []byte, o Origin, out *Outcome) {
	received := time.Now()
	ctx, span := tracing.Start(ctx, tracing.SpanReceive, tracing.AttrListener.String(in.listener.Name), tracing.AttrSize.Int(len(frame)))
	if tracing.On() {
		defer func() {
			span.SetAttributes(tracing.AttrAck.String(out.Code))
			if out.Code != "AA" && out.Code != "CA" {
				tracing.Fail(span, out.Code)
			}
			span.End()
		}()
	}
	var m hl7.Message
	refuse := func(m *hl7.Message, code hl7.ErrorCode, reason string) {
		out.refused = wire.Event{Kind: wire.EventRefused, At: received, Listener: in.listener.Name, Remote: o.RemoteAddr,
			Size: len(frame), Code: strconv.Itoa(int(code)), Reason: reason}
		if m != nil {
			out.refused.Type, out.refused.Trigger, out.refused.ControlID = m.Type(), m.Trigger(), m.ControlID()
			out.refused.SendingApp, out.refused.SendingFac, out.refused.Version = m.SendingApplication(), m.SendingFacility(), m.Version()
		}
	}
	parsed := false
	joinValidation := func() {} // waits for a validation running beside the store
	defer func() {
		if out.Err != nil && out.refused.Kind == "" {
			mm := &m
			if !parsed {
				mm = nil
			}
			refuse(mm, out.Err.Code, out.Err.Reason)
		}
	}()
	stage, refused := in.checkStage(frame, &m)
	if stage == unparsed {
		in.log.Warn().Str("remote", o.RemoteAddr).Int("size", len(frame)).Int("code", int(refused.Code)).
			Str("reason", refused.Reason).Msg("message rejected: not parseable")
		out.Err = refused
		out.reply(hl7.BuildRejectAck(frame, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Err: refused, Text: fmt.Sprintf(textUnparseable, refused.Reason)}))
		return
	}
	parsed = true
	out.ControlID = m.ControlID()
	ev := func(e *zerolog.Event) *zerolog.Event {
		if !e.Enabled() { // a level that is off: build no fields
			return e
		}
		return e.Str("remote", o.RemoteAddr).Str("control_id", m.ControlID()).Str("type", m.Type()+"^"+m.Trigger()).Int("size", len(frame))
	}
	switch stage {
	case badHeader:
		ev(in.log.Warn()).Str("reason", refused.Reason).Msg("message rejected: required field missing")
		out.Err = refused
		out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Err: refused, Text: fmt.Sprintf(textMissingHeader, refused.Location)}))
		return
	case notAccepted:
		ev(in.log.Warn()).Msg("message rejected: type not accepted")
		out.Err = refused
		out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Text: textNotAccepted, Err: out.Err}))
		return
	}
	if in.Charset != nil {
		in.checkCharset(&m, frame, o)
	}
	// Validation: before the store when it may refuse the message;
	// otherwise beside the store's round trip, joined before the event
	// that records what it found (and before returning: m reads the
	// sender's buffer).
	var problems []spec.Problem
	if in.listener.Validation == "record" {
		validated := make(chan struct{})
		go func() {
			defer close(validated)
			defer func() {
				if r := recover(); r != nil { // a bug in the validator never costs the message
					problems = nil
					in.log.Error().Str("control_id", m.ControlID()).Msg("validation panicked (a bug in hl7broker: please report it); the message is stored unchecked")
				}
			}()
			problems = in.validate(&m)
		}()
		defer func() { <-validated }()
		joinValidation = func() { <-validated }
	} else {
		problems = in.validate(&m)
	}
	if in.listener.Validation == "reject" && len(problems) > 0 { // (record: problems is the goroutine's until joined)
		ev(in.log.Warn()).Int("problems", len(problems)).Str("first", problems[0].Location).Int("code", problems[0].Code).
			Msg("message rejected: not valid for its HL7 version")
		errs := make([]*hl7.Error, len(problems))
		for i, p := range problems {
			errs[i] = problemError(p)
		}
		out.Err = errs[0]
		out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Err: errs[0], More: errs[1:],
			Text: fmt.Sprintf(textInvalid, len(problems), problems[0].Reason)}))
		return
	}
	id := identify(in.listener.Name, &m)
	rec := in.received(&m, frame, o, received, id)
	if tracing.On() {
		span.SetAttributes(tracing.AttrType.String(m.Type()+"^"+m.Trigger()), tracing.ControlID(m.ControlID()))
		tracing.Inject(ctx, rec.Header) // the route and delivery spans are its children
	}
	sctx, storeSpan := tracing.Start(ctx, tracing.SpanStore)
	var stored store.Stored
	var err error
	var rk recentKey
	resent := false
	if in.Recent != nil {
		rk = KeyOf(rec.MsgID)
		stored.Sequence, resent = in.Recent.Lookup(rk, received)
		stored.Duplicate = resent
	}
	if !resent {
		stored, err = in.committer.Commit(sctx, rec)
		if in.Recent != nil {
			if err == nil {
				in.Recent.Add(rk, stored.Sequence, received)
			} else {
				in.Recent.Unsure(received) // it may be stored all the same
			}
		}
	}
	if !storeSpan.IsRecording() {
		// tracing off, or this message not sampled: no attributes built
	} else if err != nil {
		tracing.Fail(storeSpan, "not stored")
	} else {
		storeSpan.SetAttributes(tracing.AttrInSeq.Int64(int64(stored.Sequence)), tracing.AttrDuplicate.Bool(stored.Duplicate))
	}
	storeSpan.End()
	if err != nil && store.IsTooLarge(err) {
		ev(in.log.Warn()).Str("reason", err.Error()).Msg("message rejected: too large for the store")
		out.Err = &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}, Reason: fmt.Sprintf(textTooLargeToStore, len(frame))}
		out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Text: out.Err.Reason, Err: out.Err}))
		return
	}
	if err != nil {
		ev(in.log.Error()).Str("reason", err.Error()).Dur("after", time.Since(received)).Msg("storing failed: sender told to resend")
		refuse(&m, hl7.CodeInternal, textStoreFailed)
		out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Errored, Mode: in.mode, Text: textStoreFailed,
			Err: &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}}}))
		return
	}
	if in.Metrics != nil {
		in.Metrics.StoreSeconds.WithLabelValues(in.listener.Name).Observe(time.Since(received).Seconds())
	}
	if in.Reuse != nil && !stored.Duplicate && in.Reuse.observe(id.key, id.digest, received) {
		if in.Metrics != nil {
			in.Metrics.ReusedIDs.WithLabelValues(in.listener.Name).Inc()
		}
		ev(in.log.Warn()).Uint64("seq", stored.Sequence).
			Msg("control ID reused for a different message within the duplicate window: stored and delivered as a new message")
	}
	ev(in.log.Debug()).Uint64("seq", stored.Sequence).Bool("duplicate", stored.Duplicate).Dur("store", time.Since(received)).Msg("message stored")
	out.Stored, out.Duplicate, out.Sequence = true, stored.Duplicate, stored.Sequence
	out.reply(hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Accepted, Mode: in.mode}))
	if in.Events != nil {
		e := wire.Event{Kind: wire.EventReceived, At: received, Message: stored.Sequence, Listener: in.listener.Name,
			Remote: o.RemoteAddr, Duplicate: stored.Duplicate} // Ack: in recordReceived
		if !stored.Duplicate {
			e.Head(rec.Header, len(frame))
			e.SHA256 = hex.EncodeToString(id.sum[:])
			e.Keys = hl7.SearchKeyValues(&m, in.SearchKeys)
			joinValidation()
			for _, p := range problems {
				e.Problems = append(e.Problems, wire.Problem{Location: p.Location, Code: p.Code, Reason: p.Reason})
			}
		}
		out.received = e
	}
}

// validate checks m against its version's HL7 definitions, unless the
// listener's validation is off, and counts what it finds.
func (in *Ingest) validate(m *hl7.Message) []spec.Problem {
	if in.listener.Validation == "off" || in.listener.Validation == "" {
		return nil
	}
	problems := spec.Validate(m)
	if in.Profile != nil && in.Profile.Applies(m) {
		problems = append(problems, in.Profile.Check(m)...)
	}
	problems = append(problems, in.Rules.Check(in.listener.Name, m)...)
	if in.Metrics != nil && in.Metrics.Problems != nil {
		for _, p := range problems {
			in.Metrics.Problems.WithLabelValues(in.listener.Name, strconv.Itoa(p.Code)).Inc()
		}
	}
	return problems
}

// problemError is a validation problem as an ACK's ERR says it: its
// place (ERR-2), code (ERR-3) and why (ERR-8), never the value.
func problemError(p spec.Problem) *hl7.Error {
	return &hl7.Error{Code: hl7.ErrorCode(p.Code), Severity: hl7.SeverityError, Reason: p.Reason, Location: hl7.Location{
		Segment: p.Segment, Sequence: p.SegmentRep, Field: p.Field, Repetition: p.FieldRep, Component: p.Component, Offset: -1}}
}

// RejectMLLP answers a frame over max_message_bytes.
func (in *Ingest) RejectMLLP(ctx context.Context, conn *mllp.ConnInfo, fe *mllp.FrameError) []byte {
	ack := in.reject(conn, fe)
	in.count(ackCode(ack))
	in.Events.Record(wire.Event{Kind: wire.EventRefused, At: time.Now(), Listener: in.listener.Name, Remote: conn.RemoteAddr.String(),
		Size: fe.Size, Ack: ackCode(ack), Code: strconv.Itoa(int(hl7.CodeInternal)), Reason: "MLLP frame refused: " + fe.Reason})
	return ack
}

func (in *Ingest) reject(conn *mllp.ConnInfo, fe *mllp.FrameError) []byte {
	in.log.Warn().Str("remote", conn.RemoteAddr.String()).Int("size", fe.Size).Str("reason", fe.Reason).Msg("message rejected: frame refused")
	text := fmt.Sprintf(textTooLargeFmt, fe.Size, in.listener.MaxMessageBytes)
	if !errors.Is(fe, mllp.ErrFrameTooLarge) {
		text = "bad MLLP frame: " + fe.Reason
	}
	return hl7.BuildRejectAck(fe.Prefix, hl7.AckOptions{Outcome: hl7.Rejected, Mode: in.mode, Text: text,
		Err: &hl7.Error{Code: hl7.CodeInternal, Severity: hl7.SeverityError, Location: hl7.Location{Offset: -1}}})
}

// received builds what is stored: subject, headers and dedupe ID.
func (in *Ingest) received(m *hl7.Message, frame []byte, o Origin, at time.Time, id messageID) *store.Received {
	h := wire.InRecord{ControlID: m.ControlID(), SendingApp: m.SendingApplication(), SendingFac: m.SendingFacility(),
		Type: m.Type(), Event: m.Trigger(), Version: m.Version(), Listener: in.listener.Name, RemoteAddr: o.RemoteAddr,
		ReceivedAt: at, File: o.File, FileDigest: o.FileDigest, FileIndex: o.FileIndex, Row: o.Row}.Header()
	msgID := wire.IngestID(in.listener.Name, id.key, id.digest)
	switch {
	case o.FileDigest != "":
		msgID = wire.FileMessageID(in.listener.Name, o.FileDigest, o.FileIndex)
	case o.Row != "":
		msgID = wire.RowMessageID(in.listener.Name, o.Row)
	}
	return &store.Received{
		Subject: wire.InSubject(in.listener.Name, m.Type(), m.Trigger()),
		Data:    frame,
		Header:  h,
		MsgID:   msgID,
	}
}

// messageID is what identifies a received message (wire.IngestID). key
// hashes listener, MSH-3, MSH-4 and MSH-10 (the sender's identity of the
// message); digest hashes the message's bytes as received (framing and a
// BOM removed). Hashed so that no value can run into the next one and
// nothing but the listener is readable in the Msg-Id.
type messageID struct {
	key, digest [16]byte
	sum         [32]byte // the bytes' whole SHA-256 (digest is its start)
}

func identify(listener string, m *hl7.Message) messageID {
	var id messageID
	h := sha256.New()
	var n [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(listener))
	for _, p := range []hl7.Path{hl7.PathMSH3, hl7.PathMSH4, hl7.PathMSH10} {
		raw, _ := m.Raw(p)
		put(raw)
	}
	copy(id.key[:], h.Sum(nil))
	id.sum = sha256.Sum256(m.Bytes()) // the bytes as received, less a BOM: m is unedited
	copy(id.digest[:], id.sum[:])
	return id
}
