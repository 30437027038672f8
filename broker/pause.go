package broker

// Pausing and resuming destinations: the state in HL7_STATE, shared by a
// cluster's brokers, and what this broker's workers do with it.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// watchPaused follows HL7_STATE's paused destinations, set by this
// broker's API or another broker's: a paused destination's worker stops
// (its queue keeps filling), a resumed one starts again.
func (b *Broker) watchPaused(ctx context.Context) error {
	kv, err := b.nats.JetStream.KeyValue(ctx, wire.StateBucket)
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, "paused.>")
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch of paused destinations ended")
			}
			if e == nil {
				continue // the initial values are all in
			}
			b.setPaused(strings.TrimPrefix(e.Key(), "paused."), e.Operation() == jetstream.KeyValuePut)
		}
	}
}

// loadPaused reads which destinations are paused, before workers start.
func (b *Broker) loadPaused(ctx context.Context) error {
	p, err := b.ops.Paused(ctx)
	if err != nil {
		return fmt.Errorf("paused destinations: %w", err)
	}
	b.paused = p
	return nil
}

// setPaused pauses or resumes a destination's worker.
func (b *Broker) setPaused(name string, paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused[name] == paused {
		return
	}
	b.paused[name] = paused
	if _, ok := b.host.get("destination:" + name); !ok || b.stopping.Load() {
		return
	}
	// One part changed: the worker stops, or starts, on its own queue.
	if err := b.host.sync(context.Background(), "destination", b.workerParts(b.cfg)); err != nil {
		b.log.Error().Str("destination", name).Str("reason", err.Error()).Msg("pause or resume: a worker did not start")
	}
	if paused {
		b.log.Warn().Str("destination", name).Msg("destination paused: its queue keeps filling, nothing is delivered until it is resumed")
	} else {
		b.log.Info().Str("destination", name).Msg("destination resumed")
	}
}
