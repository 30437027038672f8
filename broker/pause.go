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
	run, ok := b.workers[name]
	if !ok || b.stopping.Load() {
		return
	}
	b.stopWorker(name)
	b.startWorker(run.cfg)
	if paused {
		b.log.Warn().Str("destination", name).Msg("destination paused: its queue keeps filling, nothing is delivered until it is resumed")
	} else {
		b.log.Info().Str("destination", name).Msg("destination resumed")
	}
}
