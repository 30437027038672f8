package store

import (
	"context"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Received is one message on its way into HL7_IN.
type Received struct {
	Subject string      // hl7.in.<listener>.<type>.<event>
	Data    []byte      // the message's bytes as received
	Header  nats.Header // HL7-* headers
	MsgID   string      // Nats-Msg-Id: duplicate resends are stored once
}

// Stored says where a message was stored.
type Stored struct {
	Sequence  uint64 // HL7_IN sequence
	Duplicate bool   // a resend inside the duplicate window: stored earlier
}

// Committer stores received messages. Commit returns only once the
// message is stored (with durability fsync: on disk), or an error, in
// which case nothing may be assumed stored and the sender must be told to
// resend. It is the seam where group commit can replace per-message
// publishes without touching listeners. Safe for concurrent use.
type Committer interface {
	Commit(ctx context.Context, r *Received) (Stored, error)
}

// PublishCommitter is the first Committer: one JetStream publish per
// message, waiting for its PubAck up to Timeout.
type PublishCommitter struct {
	JetStream jetstream.JetStream
	Timeout   time.Duration
}

// Commit publishes r and waits for the PubAck.
func (c *PublishCommitter) Commit(ctx context.Context, r *Received) (Stored, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: r.Subject, Data: r.Data, Header: r.Header}
	ack, err := c.JetStream.PublishMsg(ctx, msg, jetstream.WithMsgID(r.MsgID), jetstream.WithExpectStream(wire.StreamIn))
	if err != nil {
		return Stored{}, fmt.Errorf("store in %s: %w", wire.StreamIn, err)
	}
	return Stored{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// SyncedCommitter is the group committer: each message is published as
// usual (the server writes it to the OS before its PubAck, without a disk
// sync of its own), then Commit waits for the next flush of the store,
// which every connection waiting at that moment shares. A lone sender
// pays one publish and one flush; 64 senders pay one flush between them.
// A duplicate waits too: its original may still be waiting for its flush.
type SyncedCommitter struct {
	Publisher Committer
	Syncer    *Syncer
	Timeout   time.Duration // for the publish and the flush together
}

// Commit publishes r, then waits until it is on disk.
func (c *SyncedCommitter) Commit(ctx context.Context, r *Received) (Stored, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	stored, err := c.Publisher.Commit(ctx, r)
	if err != nil {
		return Stored{}, err
	}
	if err := c.Syncer.Sync(ctx); err != nil {
		return Stored{}, fmt.Errorf("store in %s: %w", wire.StreamIn, err)
	}
	return stored, nil
}

// Committer wraps c so that each commit's outcome is reported to h.
func (h *Health) Committer(c Committer) Committer { return healthCommitter{c, h} }

// healthCommitter reports each commit's outcome to the store's health.
type healthCommitter struct {
	Committer
	health *Health
}

func (c healthCommitter) Commit(ctx context.Context, r *Received) (Stored, error) {
	st, err := c.Committer.Commit(ctx, r)
	if !IsTooLarge(err) { // that message's fault, not the store's
		c.health.Committed(err)
	}
	return st, err
}
