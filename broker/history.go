package broker

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/store"
)

// IndexFile is the history index's file under data_dir.
const IndexFile = "history.db"

// openHistory starts recording journeys and opens the index, when
// history.enabled; the operations (pause and resume at least) always.
func (b *Broker) openHistory(cfg *config.Config) error {
	b.ops = &history.Ops{JetStream: b.nats.JetStream, Sync: b.nats.Sync,
		OutSubject:  func(dest string, data []byte) string { return b.router.OutSubject(dest, data) },
		Destination: b.hasDestination}
	if !cfg.History.Enabled {
		return nil
	}
	b.events = store.NewEventLog(b.nats.JetStream, b.log)
	paths, folded := cfg.History.KeyPaths()
	ix, err := history.Open(filepath.Join(cfg.DataDir, IndexFile), paths, history.IndexOptions{Fold: folded, Content: cfg.History.ContentSearch})
	if err != nil {
		return err
	}
	b.index = ix
	b.ops.Index, b.ops.Events = ix, b.events
	b.indexer = &history.Indexer{JetStream: b.nats.JetStream, Index: ix, Log: b.log}
	return nil
}

// runHistory starts the event log and the indexer, supervised. The event
// log has its own context: it stops after everything that records.
func (b *Broker) runHistory() {
	if b.events != nil {
		ctx, cancel := context.WithCancel(context.Background())
		b.eventsCancel, b.eventsDone = cancel, make(chan struct{})
		go func() {
			defer close(b.eventsDone)
			b.sup.run(ctx, "events", b.events.Run)
		}()
	}
	if b.indexer != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.sup.run(b.runCtx, "history", b.indexer.Run)
		}()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.sup.run(b.runCtx, "reconcile", b.reconcile)
		}()
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sup.run(b.runCtx, "pause-watch", b.watchPaused)
	}()
}

// closeHistory flushes the event log and closes the index; after the
// router and workers have stopped, before NATS closes.
func (b *Broker) closeHistory() {
	if b.eventsCancel != nil {
		b.eventsCancel()
		<-b.eventsDone
	}
	if b.index != nil {
		_ = b.index.Close()
	}
}

func (b *Broker) hasDestination(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.ContainsFunc(b.cfg.Destinations, func(d config.DestinationConfig) bool { return d.Name == name })
}

// Journey events lost in a crash are rebuilt from the queues' state:
// every reconcileEvery, for copies older than reconcileAge.
const (
	reconcileEvery = 30 * time.Second
	reconcileAge   = time.Minute
)

// reconcile makes the index whole after a crash (history.Ops.Reconcile),
// at start and then every reconcileEvery.
func (b *Broker) reconcile(ctx context.Context) error {
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		n, err := b.ops.Reconcile(ctx, reconcileAge)
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.Warn().Str("component", "reconcile").Str("reason", err.Error()).Msg("the index could not be checked against the queues; will retry")
		case n > 0:
			b.log.Warn().Str("component", "reconcile").Int("copies", n).
				Msg("journey events lost in a crash were rebuilt from the queues: copies the index said were queued had been delivered or dead-lettered")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
