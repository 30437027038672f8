package history

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/wire"
)

// A migration's reconciliation: for each message of its files, what the
// broker did with it, found by what identifies the message without
// reading it (its control ID and the SHA-256 of its bytes), and answered
// with ids, statuses, codes and digests, never content.

// MaxImported is how many messages one call of Imported asks about.
const MaxImported = 1000

// Match is one message to find: its control ID (MSH-10) and the SHA-256
// (hex) of its bytes as sent.
type Match struct {
	ControlID string `json:"control_id"`
	SHA256    string `json:"sha256"`
}

// Imported is what the index knows of one Match: every message stored
// with those bytes (the first, then any replay of it or resend after the
// duplicate window), oldest first; and when none is, the broker's latest
// refusal of a message with that control ID, if any.
type Imported struct {
	Match
	Messages []ImportedMessage `json:"messages"`
	Refused  *Refused          `json:"refused,omitempty"`
}

// ImportedMessage is one stored message and its copies.
type ImportedMessage struct {
	ID         uint64         `json:"id"`
	ReceivedAt time.Time      `json:"received_at"`
	Listener   string         `json:"listener"`
	Status     string         `json:"status"`
	ReplayOf   string         `json:"replay_of,omitempty"`
	Unrouted   bool           `json:"unrouted,omitempty"`
	Copies     []ImportedCopy `json:"copies"`
}

// ImportedCopy is one destination's copy: its status, the downstream's
// last code, why it is not delivered, and the SHA-256 of what the
// destination received when it was.
type ImportedCopy struct {
	Destination string `json:"destination"`
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	Code        string `json:"code,omitempty"`
	Reason      string `json:"reason,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
}

// Imported looks up each match (at most MaxImported). listeners, when
// not nil, limits what it may find to those listeners' messages (a
// person's group limits).
func (ix *Index) Imported(ctx context.Context, matches []Match, listeners []string) ([]Imported, error) {
	if len(matches) > MaxImported {
		return nil, fmt.Errorf("%w: at most %d messages a request", ErrBadRequest, MaxImported)
	}
	scope, scopeArgs := "", []any{}
	if listeners != nil {
		in, a := inStrings(listeners)
		scope, scopeArgs = " AND listener IN "+in, a
	}
	out := make([]Imported, 0, len(matches))
	for _, m := range matches {
		sum := sumBytes(m.SHA256)
		if sum == nil {
			return nil, fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrBadRequest, m.SHA256)
		}
		r := Imported{Match: m, Messages: []ImportedMessage{}}
		args := append([]any{m.ControlID, digestOfHex(m.SHA256)}, scopeArgs...)
		rows, err := ix.r.QueryContext(ctx, `SELECT id, received_at, listener, status, replay_of, unrouted FROM messages
			WHERE control_id = ? AND digest = ?`+scope+` ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var rm ImportedMessage
			var at int64
			if err := rows.Scan(&rm.ID, &at, &rm.Listener, &rm.Status, &rm.ReplayOf, &rm.Unrouted); err != nil {
				rows.Close()
				return nil, err
			}
			rm.ReceivedAt = time.Unix(0, at).UTC()
			r.Messages = append(r.Messages, rm)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i := range r.Messages {
			if r.Messages[i].Copies, err = ix.importedCopies(ctx, r.Messages[i].ID); err != nil {
				return nil, err
			}
		}
		if len(r.Messages) == 0 && m.ControlID != "" {
			page, err := ix.RefusedMessages(ctx, RefusedFilter{ControlID: m.ControlID, Listeners: listeners, Limit: 1})
			if err != nil {
				return nil, err
			}
			if len(page.Items) > 0 {
				r.Refused = &page.Items[0]
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func (ix *Index) importedCopies(ctx context.Context, id uint64) ([]ImportedCopy, error) {
	rows, err := ix.r.QueryContext(ctx, `SELECT d.destination, d.status, d.attempts, d.code, d.reason, s.sha256
		FROM dests d LEFT JOIN sent s ON s.message = d.message AND s.destination = d.destination
		WHERE d.message = ? ORDER BY d.destination`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	copies := []ImportedCopy{}
	for rows.Next() {
		var c ImportedCopy
		var sum []byte
		if err := rows.Scan(&c.Destination, &c.Status, &c.Attempts, &c.Code, &c.Reason, &sum); err != nil {
			return nil, err
		}
		if c.Status == StatusDelivered && len(sum) > 0 {
			c.SHA256 = hex.EncodeToString(sum)
		}
		copies = append(copies, c)
	}
	return copies, rows.Err()
}

// ErrBadRequest: a question the index cannot answer as asked (too many
// messages, a digest that is not one).
var ErrBadRequest = errors.New("bad request")

// IndexProgress is how far the index has applied HL7_IN and HL7_EVENTS
// (indexed) and how far those streams go now (streams), by stream name:
// a message stored a moment ago may not be found yet, nor an outcome
// recorded a moment ago. A caller that asks again waits until indexed
// reaches the streams' positions of its first question.
func (o *Ops) IndexProgress(ctx context.Context) (indexed, streams map[string]uint64, err error) {
	pos, err := o.Index.Positions(ctx)
	if err != nil {
		return nil, nil, err
	}
	indexed, streams = map[string]uint64{}, map[string]uint64{}
	for _, name := range []string{wire.StreamIn, wire.StreamEvents} {
		s, err := o.JetStream.Stream(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, nil, err
		}
		indexed[name], streams[name] = pos[name], info.State.LastSeq
	}
	return indexed, streams, nil
}
