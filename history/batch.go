package history

// A batch: what one Apply learned from records and events, message by
// message, before it is written.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// batch is what one Apply learned, message by message.
type batch struct {
	byID    map[uint64]*change
	order   []uint64 // messages in the order first seen
	dlq     []Item
	audit   []Item
	gone    []uint64 // dead letters replayed or purged
	refused []refusedRow
	sent    []wire.Event // attempts with what was sent and answered
	texts   []Item       // messages from HL7_IN for content search
}

// refusedRow is a message ingest did not store: where its event stands
// in HL7_EVENTS (a record holds several lines) and the event.
type refusedRow struct {
	seq  uint64
	line int
	e    wire.Event
}

// change is what a batch says about one message.
type change struct {
	id      uint64
	head    *head  // its summary, when the batch has its record or received event
	journey []byte // its events, one JSON object a line
	routed  bool   // a routed event, or the router's dead letter
	// firstEvents is the first HL7_EVENTS record with an event of it;
	// since is when it was first held without its record.
	firstEvents uint64
	since       time.Time
	unrouted    *bool // the last routed event's verdict
	copies      []*copyChange
}

// copyChange is what a batch says about one destination's copy.
type copyChange struct {
	dest string
	// From a routed event: the copy was queued.
	queued   bool
	queuedAt int64
	outSeq   uint64
	changed  bool
	// From the latest delivery event (by its time): the copy's status.
	set      bool
	status   string
	at       int64
	attempts int
	code     string
	reason   string
}

func (b *batch) of(id uint64) *change {
	c := b.byID[id]
	if c == nil {
		c = &change{id: id}
		b.byID[id] = c
		b.order = append(b.order, id)
	}
	return c
}

func (c *change) copy(dest string) *copyChange {
	for _, d := range c.copies {
		if d.dest == dest {
			return d
		}
	}
	d := &copyChange{dest: dest}
	c.copies = append(c.copies, d)
	return d
}

// setTo moves the copy to status unless a later event already moved it
// (events of a cluster's brokers may interleave).
func (d *copyChange) setTo(status string, at int64, attempts int, code, reason string) {
	if d.set && at < d.at {
		return
	}
	d.set, d.status, d.at, d.code, d.reason = true, status, at, code, reason
	d.attempts = max(d.attempts, attempts)
}

func (b *batch) events(it Item) {
	n := 0
	for line := range bytes.SplitSeq(bytes.TrimSpace(it.Data), []byte("\n")) {
		n++
		var e wire.Event
		if wire.ParseEvent(line, &e) != nil {
			continue // not ours
		}
		if e.Kind == wire.EventRefused {
			b.refused = append(b.refused, refusedRow{seq: it.Seq, line: n, e: e})
			continue
		}
		if e.Message == 0 {
			continue // not about a message
		}
		c := b.of(e.Message)
		if c.firstEvents == 0 || it.Seq < c.firstEvents {
			c.firstEvents = it.Seq
		}
		if e.HasHead() {
			c.setHead(headOfEvent(e))
			if e.Keys != nil || e.SHA256 != "" { // for the index, not for the journey
				j := e
				j.Keys, j.SHA256 = nil, ""
				if l, err := wire.AppendEvent(nil, j); err == nil {
					line = l
				}
			}
		}
		if e.HasContent() || e.SHA256 != "" && e.Kind == wire.EventDelivered { // content for the message's page, not for the journey
			b.sent = append(b.sent, e)
			if l, err := wire.AppendEvent(nil, e.ForJourney()); err == nil {
				line = l
			}
		}
		c.journey = append(append(c.journey, line...), '\n')
		b.event(c, e)
	}
}

func (b *batch) event(c *change, e wire.Event) {
	at := e.At.UnixNano()
	switch e.Kind {
	case wire.EventRouted:
		c.routed = true
		c.unrouted = &e.Unrouted
		for _, dest := range e.Destinations {
			d := c.copy(dest)
			d.queued, d.outSeq, d.changed = true, e.OutSeqs[dest], slices.Contains(e.Changed, dest)
			if d.queuedAt == 0 {
				d.queuedAt = at
			}
		}
	case wire.EventAttempt:
		c.copy(e.Destination).setTo(StatusRetrying, at, e.Attempt, e.Code, e.Reason)
	case wire.EventDelivered:
		c.copy(e.Destination).setTo(StatusDelivered, at, e.Attempt, e.Code, "")
	case wire.EventDeadLettered:
		if e.Destination == wire.TransformDLQ {
			c.routed = true
		}
		c.copy(e.Destination).setTo(StatusDeadLettered, at, e.Attempt, e.Code, e.Reason)
	case wire.EventReplayed:
		if e.DLQ != 0 {
			b.gone = append(b.gone, e.DLQ)
		}
		if e.Destination != "" {
			if e.DLQ != 0 && e.Reason != "" { // replayed to another destination: the old one's letter is gone
				c.copy(e.Reason).setTo(StatusPurged, at, 0, "", "replayed to "+e.Destination)
			}
			c.copy(e.Destination).setTo(StatusQueued, at, 0, "", "")
		}
	case wire.EventPurged:
		b.gone = append(b.gone, e.DLQ)
		c.copy(e.Destination).setTo(StatusPurged, at, 0, "", "purged by "+e.By)
	}
}

// touched: the batch may change the message's status.
func (c *change) touched() bool { return c.routed || len(c.copies) > 0 }

// head is what the index shows of a message: from its HL7_IN record
// (read when the index catches up) or from its received event (live).
type head struct {
	inSeq                                        uint64 // from its record: the record's sequence
	data                                         []byte // from its record: the message, for its search keys
	at                                           time.Time
	listener, sendingApp, sendingFac, typ, event string
	controlID, version, remote, replayOf         string
	size                                         int
	keys                                         map[string][]string // from its received event
	digest                                       int64               // the start of the SHA-256 of its bytes (0: not known)
}

func headOfRecord(it Item) *head {
	h := it.Header
	return &head{inSeq: it.Seq, data: it.Data, at: headerTime(h, wire.HeaderReceivedAt, it.Time), listener: h.Get(wire.HeaderListener),
		sendingApp: h.Get(wire.HeaderSendingApp), sendingFac: h.Get(wire.HeaderSendingFac), typ: h.Get(wire.HeaderType),
		event: h.Get(wire.HeaderEvent), controlID: h.Get(wire.HeaderControlID), version: h.Get(wire.HeaderVersion),
		remote: h.Get(wire.HeaderRemoteAddr), replayOf: h.Get(wire.HeaderReplayOf), size: len(it.Data), digest: Digest(sha256.Sum256(it.Data))}
}

func headOfEvent(e wire.Event) *head {
	return &head{at: e.At, listener: e.Listener, sendingApp: e.SendingApp, sendingFac: e.SendingFac, typ: e.Type, event: e.Trigger,
		controlID: e.ControlID, version: e.Version, remote: e.Remote, replayOf: e.ReplayOf, size: e.Size, keys: e.Keys,
		digest: digestOfHex(e.SHA256)}
}

// Digest is what the index keeps of a message's SHA-256: its first 8
// bytes as a number (never 0, which says "not known"). A reconciliation
// finds a message by its control ID and this.
func Digest(sum [32]byte) int64 {
	return max(int64(binary.BigEndian.Uint64(sum[:8])&(1<<63-1)), 1)
}

// digestOfHex is Digest of a SHA-256 written in hex; 0 when it is not one.
func digestOfHex(s string) int64 {
	var sum [32]byte
	if b := sumBytes(s); b != nil {
		copy(sum[:], b)
		return Digest(sum)
	}
	return 0
}

// sumBytes is a SHA-256 written in hex as its 32 bytes; nil when it is
// not one.
func sumBytes(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil
	}
	return b
}

// setHead keeps h; a record's head wins over an event's (its search keys
// are read by this index, for its own search keys).
func (c *change) setHead(h *head) {
	if c.head == nil || h.inSeq > 0 {
		c.head = h
	}
}
