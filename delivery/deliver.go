package delivery

import (
	"context"
	"time"
)

// Outcome of one delivery attempt.
type Outcome int

const (
	Delivered Outcome = iota // the endpoint accepted it
	Retry                    // a temporary failure: try again after the backoff
	Rejected                 // the endpoint refused it for good (AR/CR, HTTP 4xx)
)

// Result is one attempt's outcome and, unless delivered, why, in words
// with no message content (codes, statuses, error texts of transports).
type Result struct {
	Outcome Outcome
	Reason  string
	// Code is what the endpoint answered, when it answered: an ACK's
	// MSA-1 (AA, AE, AR...) or an HTTP status (200, 503...).
	Code string

	// What was sent and answered, for the message's page: content, kept
	// in the history index only (never logged, never in a reason). Sent
	// is nil when it was Message.Data as given; SentName names the file
	// written; Response is the ACK, or the HTTP status line and the start
	// of the body.
	Sent     []byte
	SentName string
	Response []byte
}

// String names an outcome as journeys and the API do.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	}
	return "rejected"
}

// Message is one message to deliver: its bytes as routed (and encoded
// for the destination) and what a deliverer may name it by. It carries no
// content beyond the bytes: a Deliverer knows nothing of how it was
// stored.
type Message struct {
	Data      []byte
	ControlID string // MSH-10
	InSeq     uint64 // its input's HL7_IN sequence: a stable, ordered number
	// ReceivedAt is when the broker received it (zero if not known).
	ReceivedAt time.Time
	// Vars are the variables its route's scripts set, for the
	// destination's encoder.
	Vars map[string]string
}

// Deliverer forwards one message to a downstream endpoint. Deliver is
// called once per attempt, never concurrently for a fifo destination; it
// returns what the endpoint said. The worker decides about retries.
type Deliverer interface {
	Deliver(ctx context.Context, m Message) Result
	Close() error
}
