package history

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/hl7/spec"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Ops are the operations on stored messages that people run through the
// admin API: show, replay, dead letters, pause and resume. Each one that
// changes something records it in the journey of the messages concerned.
type Ops struct {
	JetStream jetstream.JetStream
	Index     *Index
	Events    *store.EventLog
	// Sync returns once what was published is durable (nil: no wait).
	Sync func(context.Context) error
	// OutSubject is the HL7_OUT subject of a copy for dest (partitions).
	OutSubject func(dest string, data []byte) string
	// Destinations reports whether a destination is configured.
	Destination func(name string) bool
}

// ErrUnknownDestination: a replay named a destination not configured.
var ErrUnknownDestination = errors.New("no such destination")

// Field is one field of a segment, by its HL7 path (PID-5), raw; with
// its name and data type from the HL7 v2 definitions of the message's
// version (package spec), and, when it has several components or
// repetitions, each component (and subcomponent) with its name.
type Field struct {
	Path       string      `json:"path"`
	Name       string      `json:"name,omitempty"`
	Type       string      `json:"type,omitempty"`
	Value      string      `json:"value"`
	Components []Component `json:"components,omitempty"`
}

// Component is a component or subcomponent of a field's repetition, by
// its path (PID-5.1, PID-3[2].4.1), its value unescaped.
type Component struct {
	Path          string      `json:"path"`
	Name          string      `json:"name,omitempty"`
	Type          string      `json:"type,omitempty"`
	Value         string      `json:"value"`
	Subcomponents []Component `json:"subcomponents,omitempty"`
}

// Segment is one segment and its non-empty fields.
type Segment struct {
	Name   string  `json:"name"`
	Fields []Field `json:"fields"`
}

// CopyContent is a destination's copy as sent, when it is known.
type CopyContent struct {
	Copy
	Data string `json:"data,omitempty"`
	// Source says where Data came from: "queue" (the copy kept in
	// HL7_OUT), "input" (no transform changed it: the input's bytes), or
	// "" when it is no longer kept (Note says why).
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
	// Sent is the payload as the latest attempt sent it (the JSON, FHIR
	// Bundle, SQL row values or ER7 the destination made of Data), as
	// text, or base64 with SentEncoding "base64" when it is not UTF-8;
	// SentSize is its whole size when only its start (wire.SentKept) is
	// kept. SentName is the file it was written to.
	Sent         string `json:"sent,omitempty"`
	SentEncoding string `json:"sent_encoding,omitempty"`
	SentSize     int    `json:"sent_size,omitempty"`
	SentName     string `json:"sent_name,omitempty"`
	// Response is what the downstream answered the latest attempt: the
	// ACK, or the HTTP status line, content type and the start of the
	// body; base64 with ResponseEncoding "base64" when not UTF-8.
	Response         string `json:"response,omitempty"`
	ResponseEncoding string `json:"response_encoding,omitempty"`
}

// setSent fills in what was sent and answered, as the index kept it;
// with nothing kept of the payload, a copy sent as queued was sent as
// its Data.
func (cc *CopyContent) setSent(r sentRow, ok bool) {
	if ok {
		cc.SentName = r.name
		cc.Sent, cc.SentEncoding = asText(r.payload)
		cc.Response, cc.ResponseEncoding = asText(r.response)
		if r.size > len(r.payload) {
			cc.SentSize = r.size
		}
	}
	switch {
	case r.size == wire.SentUnkept:
		cc.Note = "what was sent is not kept: too many payloads waited to be recorded at the time"
	case r.payload == nil && cc.Attempts > 0:
		cc.Sent = cc.Data
	}
}

// asText is b as a JSON string holds it: itself when UTF-8, else base64.
func asText(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// View is one message with its content: what GET /api/v1/messages/{id}
// answers.
type View struct {
	Detail
	Message  string        `json:"message"` // as received, segments ended by \r
	Segments []Segment     `json:"segments"`
	Copies   []CopyContent `json:"copies"`
	// Validation is what validation found when it was received (where and
	// the HL7 table 0357 code; [] for none, or when it was not checked).
	Validation []wire.Problem `json:"validation"`
}

// Show returns message id with its content, copies and journey.
func (o *Ops) Show(ctx context.Context, id uint64) (View, error) {
	d, err := o.Index.Message(ctx, id)
	if err != nil {
		return View{}, err
	}
	in, err := o.get(ctx, wire.StreamIn, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return View{}, ErrNotFound
	} else if err != nil {
		return View{}, err
	}
	v := View{Detail: d, Message: string(in.Data), Segments: segments(in.Data), Copies: []CopyContent{}, Validation: []wire.Problem{}}
	for _, raw := range d.Journey {
		var e wire.Event
		if wire.ParseEvent(raw, &e) == nil && e.Kind == wire.EventReceived && len(e.Problems) > 0 {
			v.Validation = e.Problems
		}
	}
	sent, err := o.Index.sent(ctx, id)
	if err != nil {
		return View{}, err
	}
	for _, c := range d.Copies {
		cc := CopyContent{Copy: c}
		if c.OutSeq > 0 {
			if m, err := o.get(ctx, wire.StreamOut, c.OutSeq); err == nil && m.Header.Get(wire.HeaderInSeq) == strconv.FormatUint(id, 10) {
				cc.Data, cc.Source = string(m.Data), "queue"
			}
		}
		if cc.Source == "" && !c.Changed && c.OutSeq > 0 {
			cc.Data, cc.Source = v.Message, "input"
		}
		if cc.Source == "" {
			cc.Note = "the copy as sent is no longer kept (history.keep_copies)"
		}
		r, ok := sent[c.Destination]
		cc.setSent(r, ok)
		v.Copies = append(v.Copies, cc)
	}
	return v, nil
}

func (o *Ops) getIn(ctx context.Context, id uint64) (*jetstream.RawStreamMsg, error) {
	m, err := o.get(ctx, wire.StreamIn, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	return m, err
}

// segments lists each segment's non-empty fields by path.
func segments(data []byte) []Segment {
	m, err := hl7.Parse(data)
	out := []Segment{}
	if err != nil {
		return out
	}
	defs, _ := spec.Lookup(m.ValueString(hl7.Path{Segment: "MSH", Field: 12, Component: 1}))
	d := m.Delimiters()
	count := map[string]int{}
	for seg := range m.Segments() {
		name := seg.Name()
		count[name]++
		s := Segment{Name: name, Fields: []Field{}}
		for n := 1; n <= seg.FieldCount(); n++ {
			raw, ok := seg.Field(n)
			if !ok || len(raw) == 0 {
				continue
			}
			path := name + "-" + strconv.Itoa(n)
			if count[name] > 1 {
				path = fmt.Sprintf("%s[%d]-%d", name, count[name], n)
			}
			f := Field{Path: path, Value: string(raw)}
			if def := defs.Field(name, n); def != nil {
				f.Name, f.Type = def.Name, def.Type
			}
			if f.Type == "varies" || f.Type == "VARIES" { // OBX-5: the type OBX-2 gives
				if vt, ok := seg.Field(2); ok && defs.Types[string(vt)] != nil {
					f.Type = string(vt)
				}
			}
			if !(name == "MSH" && n <= 2) { // the separators themselves
				f.Components = components(defs, d, f.Type, path, raw)
			}
			s.Fields = append(s.Fields, f)
		}
		out = append(out, s)
	}
	return out
}

// components splits a field's raw value into its repetitions'
// components and subcomponents, named by its data type typ; none when
// the value is one plain value.
func components(defs *spec.Version, d hl7.Delimiters, typ, path string, raw []byte) []Component {
	if !bytes.ContainsAny(raw, string([]byte{d.Component, d.Repetition, d.Subcomponent})) {
		return nil
	}
	var out []Component
	reps := bytes.Split(raw, []byte{d.Repetition})
	for r, rep := range reps {
		base := path
		if len(reps) > 1 {
			base = fmt.Sprintf("%s[%d]", path, r+1)
		}
		for c, comp := range bytes.Split(rep, []byte{d.Component}) {
			if len(comp) == 0 {
				continue
			}
			cp := Component{Path: base + "." + strconv.Itoa(c+1), Value: string(d.Unescape(comp))}
			if def := defs.Component(typ, c+1); def != nil {
				cp.Name, cp.Type = def.Name, def.Type
			}
			if subs := bytes.Split(comp, []byte{d.Subcomponent}); len(subs) > 1 {
				for sIdx, sub := range subs {
					if len(sub) == 0 {
						continue
					}
					sc := Component{Path: cp.Path + "." + strconv.Itoa(sIdx+1), Value: string(d.Unescape(sub))}
					if def := defs.Component(cp.Type, sIdx+1); def != nil {
						sc.Name, sc.Type = def.Name, def.Type
					}
					cp.Subcomponents = append(cp.Subcomponents, sc)
				}
			}
			out = append(out, cp)
		}
	}
	return out
}

// Result is the outcome of an operation on one message or dead letter.
type Result struct {
	ID     string `json:"id"`
	Result string `json:"result"`           // replayed, purged, or why not
	NewID  string `json:"new_id,omitempty"` // a reprocessed message's new id
}

// Outcome is the outcome of an operation on several.
type Outcome struct {
	Items  []Result `json:"items"`
	Done   int      `json:"done"`
	Failed int      `json:"failed"`
}

func (out *Outcome) add(id uint64, err error, newID uint64) {
	r := Result{ID: strconv.FormatUint(id, 10), Result: "ok"}
	if err != nil {
		r.Result = err.Error()
		out.Failed++
	} else {
		out.Done++
	}
	if newID > 0 {
		r.NewID = strconv.FormatUint(newID, 10)
	}
	out.Items = append(out.Items, r)
}

func (o *Ops) sync(ctx context.Context) error {
	if o.Sync == nil {
		return nil
	}
	return o.Sync(ctx)
}

// ReplayMessages replays each message: through today's routes as a new
// message (dest empty), or its copy for dest sent again. by is who asked.
// Whatever order ids come in, they are replayed in the order the broker
// received them (ids are HL7_IN sequences).
func (o *Ops) ReplayMessages(ctx context.Context, ids []uint64, dest, by string) (Outcome, error) {
	if dest != "" && !o.Destination(dest) {
		return Outcome{}, fmt.Errorf("%w: %s", ErrUnknownDestination, dest)
	}
	out := Outcome{Items: []Result{}}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		newID, err := o.replayMessage(ctx, id, dest, by)
		out.add(id, err, newID)
	}
	return out, o.sync(ctx)
}

func (o *Ops) replayMessage(ctx context.Context, id uint64, dest, by string) (uint64, error) {
	// Journeys order by time: a replay's event bears the time before its
	// copy could be delivered, though it is recorded after.
	at := time.Now()
	in, err := o.getIn(ctx, id)
	if err != nil {
		return 0, err
	}
	if dest == "" {
		seq, err := o.reprocess(ctx, in.Subject, in.Header, in.Data, "message "+strconv.FormatUint(id, 10), by)
		if err == nil {
			o.Events.Record(wire.Event{Kind: wire.EventReplayed, At: at, Message: id, By: by, As: seq})
		}
		return seq, err
	}
	data := in.Data
	if v, err := o.Show(ctx, id); err == nil {
		for _, c := range v.Copies {
			if c.Destination == dest && c.Source != "" {
				data = []byte(c.Data) // as it was sent to dest
			}
		}
	}
	h := wire.CopyHeader(in.Header, "_replay", id)
	if err := o.queue(ctx, dest, data, h, "message "+strconv.FormatUint(id, 10), by); err != nil {
		return 0, err
	}
	o.Events.Record(wire.Event{Kind: wire.EventReplayed, At: at, Message: id, By: by, Destination: dest})
	return 0, nil
}

// reprocess stores data as a new message in HL7_IN, marked as a replay
// of what; the router routes it by today's routes.
func (o *Ops) reprocess(ctx context.Context, subject string, h nats.Header, data []byte, what, by string) (uint64, error) {
	h = wire.OwnHeaders(h)
	wire.Unmark(h)
	h.Del(wire.HeaderRoute) // a message again: no route made it yet
	h.Del(wire.HeaderInSeq)
	h.Set(wire.HeaderReplayOf, what)
	h.Set(wire.HeaderReplayedBy, by)
	at := time.Now()
	h.Set(wire.HeaderReceivedAt, wire.FormatTime(at))
	ack, err := o.JetStream.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: data},
		jetstream.WithMsgID(wire.ReplayID(strings.ReplaceAll(what, " ", ":"), 0, nuid.Next())))
	if err != nil {
		return 0, fmt.Errorf("storing the replay failed: %w", err)
	}
	sum := sha256.Sum256(data)
	e := wire.Event{Kind: wire.EventReceived, At: at, Message: ack.Sequence, Listener: h.Get(wire.HeaderListener), By: by, SHA256: hex.EncodeToString(sum[:])}
	e.Head(h, len(data))
	var m hl7.Message
	if o.Index != nil && m.ParseWith(data, indexLimits) == nil {
		e.Keys = hl7.SearchKeyValues(&m, o.Index.KeyPaths())
	}
	o.Events.Record(e)
	return ack.Sequence, nil
}

// queue puts a copy on dest's queue, marked as a replay of what.
func (o *Ops) queue(ctx context.Context, dest string, data []byte, h nats.Header, what, by string) error {
	h.Set(wire.HeaderReplayOf, what)
	h.Set(wire.HeaderReplayedBy, by)
	_, err := o.JetStream.PublishMsg(ctx, &nats.Msg{Subject: o.OutSubject(dest, data), Header: h, Data: data},
		jetstream.WithMsgID(wire.ReplayID(strings.ReplaceAll(what, " ", ":"), 0, nuid.Next())))
	if err != nil {
		return fmt.Errorf("queueing the replay failed: %w", err)
	}
	return nil
}

// ReplayDeadLetters sends dead letters again: to their destination, or to
// dest when given; a letter the router parked (a failed transform) is
// reprocessed through today's routes. Each leaves HL7_DLQ once its
// replay is stored. They are replayed in the order their messages were
// received (inReceivedOrder), and each by one replay only: a letter
// another replay or purge has claimed is reported, not sent twice.
func (o *Ops) ReplayDeadLetters(ctx context.Context, ids []uint64, dest, by string) (Outcome, error) {
	if dest != "" && !o.Destination(dest) {
		return Outcome{}, fmt.Errorf("%w: %s", ErrUnknownDestination, dest)
	}
	out := Outcome{Items: []Result{}}
	for _, id := range o.inReceivedOrder(ctx, slices.Compact(slices.Sorted(slices.Values(ids)))) {
		newID, err := o.replayDeadLetter(ctx, id, dest, by)
		out.add(id, err, newID)
	}
	return out, nil
}

func (o *Ops) replayDeadLetter(ctx context.Context, id uint64, dest, by string) (uint64, error) {
	at := time.Now() // see replayMessage
	release, err := o.claimDeadLetter(ctx, id, by)
	if err != nil {
		return 0, err
	}
	defer release()
	m, err := o.get(ctx, wire.StreamDLQ, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, ErrNotFound
	} else if err != nil {
		return 0, err
	}
	from := strings.TrimPrefix(m.Subject, wire.SubjectDLQ+".")
	inSeq, _ := strconv.ParseUint(m.Header.Get(wire.HeaderInSeq), 10, 64)
	what := "dlq " + strconv.FormatUint(id, 10)
	var newID uint64
	to := dest
	if to == "" {
		to = from
	}
	if to == wire.TransformDLQ {
		h := m.Header
		newID, err = o.reprocess(ctx, wire.InSubject(h.Get(wire.HeaderListener), h.Get(wire.HeaderType), h.Get(wire.HeaderEvent)), h, m.Data, what, by)
	} else {
		if !o.Destination(to) {
			return 0, fmt.Errorf("%w: %s (give another destination)", ErrUnknownDestination, to)
		}
		h := wire.OwnHeaders(m.Header)
		wire.Unmark(h)
		err = o.queue(ctx, to, m.Data, h, what, by)
	}
	if err != nil {
		return 0, err
	}
	if err := o.sync(ctx); err != nil {
		return 0, fmt.Errorf("the replay is not confirmed on disk; the dead letter stays: %w", err)
	}
	ev := wire.Event{Kind: wire.EventReplayed, At: at, Message: inSeq, By: by, DLQ: id, As: newID}
	if to != wire.TransformDLQ {
		ev.Destination = to
		if to != from {
			ev.Reason = from
		}
	}
	if err := o.deleteDeadLetter(ctx, id); err != nil {
		return newID, fmt.Errorf("replayed, but removing the dead letter failed (it stays; replaying it again would send it twice): %w", err)
	}
	o.Events.Record(ev)
	return newID, nil
}

func (o *Ops) deleteDeadLetter(ctx context.Context, id uint64) error {
	s, err := o.JetStream.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, id); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	// The index learns it from the journey event too; removing the row
	// now makes the next list right at once.
	_, _ = o.Index.w.ExecContext(ctx, `DELETE FROM dlq WHERE id = ?`, id)
	return nil
}

// PurgeDeadLetters deletes dead letters for good.
func (o *Ops) PurgeDeadLetters(ctx context.Context, ids []uint64, by string) Outcome {
	out := Outcome{Items: []Result{}}
	for _, id := range ids {
		out.add(id, o.purgeDeadLetter(ctx, id, by), 0)
	}
	return out
}

func (o *Ops) purgeDeadLetter(ctx context.Context, id uint64, by string) error {
	release, err := o.claimDeadLetter(ctx, id, by)
	if err != nil {
		return err
	}
	defer release()
	m, err := o.get(ctx, wire.StreamDLQ, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if err := o.deleteDeadLetter(ctx, id); err != nil {
		return err
	}
	inSeq, _ := strconv.ParseUint(m.Header.Get(wire.HeaderInSeq), 10, 64)
	o.Events.Record(wire.Event{Kind: wire.EventPurged, Message: inSeq, Destination: strings.TrimPrefix(m.Subject, wire.SubjectDLQ+"."), DLQ: id, By: by})
	return nil
}

// DeadLetterIDs lists the ids of the dead letters of dest ("" all), up
// to max: the oldest messages' first, so that a bulk replay cut at max
// leaves only later messages for the next one.
func (o *Ops) DeadLetterIDs(ctx context.Context, dest string, maxN int) ([]uint64, error) {
	q, args := `SELECT id FROM dlq ORDER BY message, id LIMIT ?`, []any{maxN}
	if dest != "" {
		q, args = `SELECT id FROM dlq WHERE destination = ? ORDER BY message, id LIMIT ?`, []any{dest, maxN}
	}
	rows, err := o.Index.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MessageIDs lists the ids of the messages f selects, up to max.
func (o *Ops) MessageIDs(ctx context.Context, f Filter, maxN int) ([]uint64, error) {
	f.Limit = 1000
	return collectIDs(maxN, func(cursor string) ([]string, string, error) {
		f.Cursor = cursor
		p, err := o.Index.Search(ctx, f)
		ids := make([]string, len(p.Items))
		for i, s := range p.Items {
			ids[i] = s.ID
		}
		return ids, p.NextCursor, err
	})
}

// collectIDs pages through a listing until maxN ids or its end.
func collectIDs(maxN int, page func(cursor string) (ids []string, next string, err error)) ([]uint64, error) {
	var out []uint64
	cursor := ""
	for len(out) < maxN {
		ids, next, err := page(cursor)
		if err != nil {
			return nil, err
		}
		for _, s := range ids {
			id, _ := strconv.ParseUint(s, 10, 64)
			out = append(out, id)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return out[:min(len(out), maxN)], nil
}

// Paused lists the paused destinations (by anyone of the cluster).
func (o *Ops) Paused(ctx context.Context) (map[string]bool, error) {
	kv, err := o.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for k := range keys.Keys() {
		if d, ok := strings.CutPrefix(k, "paused."); ok {
			out[d] = true
		}
	}
	return out, nil
}

// SetPaused pauses or resumes dest; the state is stored, so it survives
// restarts and every broker of a cluster follows it.
func (o *Ops) SetPaused(ctx context.Context, dest string, paused bool, by string) error {
	if !o.Destination(dest) {
		return fmt.Errorf("%w: %s", ErrUnknownDestination, dest)
	}
	kv, err := o.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return err
	}
	if paused {
		v, _ := json.Marshal(map[string]string{"by": by, "at": time.Now().UTC().Format(time.RFC3339)})
		_, err = kv.Put(ctx, wire.PausedKey(dest), v)
		return err
	}
	if err := kv.Delete(ctx, wire.PausedKey(dest)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}

// get reads one stored message of a stream.
func (o *Ops) get(ctx context.Context, stream string, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := o.JetStream.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.GetMsg(ctx, seq)
}

// DeadLetterContent is a dead letter's bytes.
func (o *Ops) DeadLetterContent(ctx context.Context, id uint64) ([]byte, error) {
	m, err := o.get(ctx, wire.StreamDLQ, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	return m.Data, nil
}
