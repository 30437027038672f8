package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// The fence. Routers of several broker instances share the router
// consumer in a pinned priority group, so one routes at a time. But a
// router whose pin has moved (it stalled: a long pause, a partition) may
// still hold inputs, and when it resumes it would store their copies
// after its successor's: out of order, and twice once the duplicate
// window has passed. So a router that starts routing first publishes a
// fence record to SubjectRouterFence in HL7_OUT, and stores every copy
// with Nats-Expected-Last-Sequence: the last sequence of HL7_OUT as it
// last saw it (its fence record, or its last copy). The server itself
// refuses, atomically with the store, a copy from a router after whose
// last store anything else was stored: a newer fence record, or a copy
// replayed by a person. A refused router reads the fence: if the last
// record is still its own, something else was stored (a replay), and it
// goes on from the stream's new last sequence; if not, it asks the
// consumer who holds the pin: if it still does (a standby starting up put
// up a fence for a moment), it puts up its own again and goes on; if not
// (another router holds it, or no one does), it drops what it holds
// (unacked: whoever holds the pin next routes it) and stores nothing more
// until it is handed inputs again. (An expectation on the fence subject
// alone would need no re-reading after a replay, but the server then
// loads the fence record for every copy: 8-10% of the router's rate.)

// errFenced: another router took over; this one stores nothing more of
// what it holds.
var errFenced = errors.New("router: another router took over (its fence is up); dropping the inputs held")

// fenceRecord is what a fence record says, for people reading the stream.
type fenceRecord struct {
	Pin string    `json:"pin,omitempty"`
	At  time.Time `json:"at"`
}

// raiseFence publishes this router's fence record; from then on a copy
// stored by any router whose fence is older is refused.
func (r *Router) raiseFence(ctx context.Context, pin string) error {
	data, _ := json.Marshal(fenceRecord{Pin: pin, At: time.Now().UTC()})
	ack, err := r.JetStream.Publish(ctx, wire.SubjectRouterFence, data)
	if err != nil {
		return fmt.Errorf("router fence: %w", err)
	}
	r.fence, r.fencePin, r.lastOut = ack.Sequence, pin, ack.Sequence
	// Only the last record counts: the older ones go, so that a router
	// whose pin is renewed all day does not leave a record each time.
	if st, err := r.JetStream.Stream(ctx, wire.StreamOut); err == nil {
		_ = st.Purge(ctx, jetstream.WithPurgeSubject(wire.SubjectRouterFence), jetstream.WithPurgeKeep(1))
	}
	return nil
}

// fenceRefused says whether err is the server refusing a copy because the
// fence record is not this router's.
func fenceRefused(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// afterFenceRefused decides, once a copy was refused by the fence, whether
// this router may go on (nil: it still holds the pin, and its fence is up
// again) or must stop (errFenced).
func (r *Router) afterFenceRefused(ctx context.Context) error {
	s, err := r.JetStream.Stream(ctx, wire.StreamOut)
	if err != nil {
		return err
	}
	if last, err := s.GetLastMsgForSubject(ctx, wire.SubjectRouterFence); err == nil && last.Sequence == r.fence {
		info, err := s.Info(ctx) // the fence is ours: something else was stored meanwhile
		if err != nil {
			return err
		}
		r.lastOut = info.State.LastSeq
		return nil
	}
	holder, err := r.pinHolder(ctx)
	if err != nil {
		return err
	}
	if holder == "" || holder != r.fencePin {
		// Another router's, or no one's: what this one holds will be
		// handed out again to whoever holds the pin next.
		return errFenced
	}
	// Still ours: a standby starting up put up its fence for a moment.
	return r.raiseFence(ctx, r.fencePin)
}

// pinHolder is the pin ID the router group is pinned to now ("" when
// none).
func (r *Router) pinHolder(ctx context.Context) (string, error) {
	c, err := r.JetStream.Consumer(ctx, wire.StreamIn, wire.RouterConsumer)
	if err != nil {
		return "", err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range info.PriorityGroups {
		if g.Group == wire.RouterGroup {
			return g.PinnedClientID, nil
		}
	}
	return "", nil
}

// dropFenced is what a fenced router does with what it held: nothing
// (unacked, the pin's holder routes it). It says so, and will put up a
// fence again when it is next handed inputs.
func (r *Router) dropFenced() {
	r.Log.Warn().Msg("router: another router took over while this one held inputs; it stored none of them after the hand-over and leaves them to it")
	r.fenced, r.fence, r.fencePin = false, 0, ""
}
