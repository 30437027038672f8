package store

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PullOptions bound how long a consumer can sit without a pull request
// open on the server. nats.go's Consume (v1.55) skips the next pull when
// a message arrives while its previous pull request is still being sent
// (fetchInProgress), which on the in-process connection happens under
// load; nothing then asks for more until two idle heartbeats are missed.
// With the default 15 s heartbeat a destination stalled 27-30 s at a time
// behind a healthy downstream. A 500 ms heartbeat bounds such a gap to
// about a second; the heartbeats cost one small message per consumer and
// half second. (A worker also asks for one message more than it may hold,
// so the race rarely happens at all: see delivery.Worker.Run.)
var PullOptions = []jetstream.PullConsumeOpt{jetstream.PullExpiry(5 * time.Second), jetstream.PullHeartbeat(500 * time.Millisecond)}

// WaitClosed waits for a consumer to stop, at most 2 s: with the server
// already gone, closing cannot be confirmed and must not hold up shutdown.
func WaitClosed(cc jetstream.ConsumeContext) {
	select {
	case <-cc.Closed():
	case <-time.After(2 * time.Second):
	}
}

// PinIDHeader is the header JetStream sets on a message it delivers to
// the pinned client of a priority group: that client's pin.
const PinIDHeader = "Nats-Pin-Id"

// GiveUpPin is for a consumer in a pinned priority group whose client has
// stopped consuming: it lets what was sent on js's connection (the last
// acks) reach the server, then unpins the group if pinID still holds it,
// so that another broker's client takes over at once instead of after the
// pin's time to live. A pin that moved on already is left alone. Errors
// are ignored: the pin then expires by itself.
func GiveUpPin(js jetstream.JetStream, stream, durable, group, pinID string) {
	if pinID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = js.Conn().FlushWithContext(ctx)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return
	}
	c, err := s.Consumer(ctx, durable)
	if err != nil || !pinnedTo(c.CachedInfo(), group, pinID) {
		return
	}
	_ = s.UnpinConsumer(ctx, durable, group)
}

// pinnedTo reports whether the consumer's group is pinned to id.
func pinnedTo(ci *jetstream.ConsumerInfo, group, id string) bool {
	if ci == nil {
		return false
	}
	for _, g := range ci.PriorityGroups {
		if g.Group == group && g.PinnedClientID == id {
			return true
		}
	}
	return false
}

// IsTooLarge reports whether a publish failed because the message exceeds
// the store's size limits: it can never be stored as it is, so retrying
// is pointless.
func IsTooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}
