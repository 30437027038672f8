package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
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
	ix, err := history.OpenIndex(filepath.Join(cfg.DataDir, IndexFile), cfg.History.SearchKeys)
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

// apiTokens reads the configured tokens, keeping only their hashes; an
// optional one that is missing is left out, and named in missing.
func apiTokens(cfg *config.Config) (tokens []admin.Token, missing []string, err error) {
	var out []admin.Token
	for _, t := range cfg.Admin.Tokens {
		secret, err := cfg.ReadToken(t)
		if t.Optional && errors.Is(err, config.ErrTokenMissing) {
			missing = append(missing, t.Name)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("admin.tokens %s: %w", t.Name, err)
		}
		out = append(out, admin.NewToken(t.Name, t.Role, secret))
	}
	return out, missing, nil
}

// warnMissingTokens names the optional tokens left out.
func (b *Broker) warnMissingTokens(missing []string) {
	for _, name := range missing {
		b.log.Warn().Str("token", name).Msg("admin.tokens: this optional token's file or variable is missing, so it is left out (create it and reload)")
	}
}

// audit appends an entry to HL7_AUDIT; a failure is logged (the entry has
// no content, so it can be).
func (b *Broker) audit(ctx context.Context, e wire.AuditEntry) error {
	err := b.nats.AuditRoom()
	if err == nil {
		err = store.AppendAudit(ctx, b.nats.JetStream, e)
	}
	if err != nil {
		b.log.Error().Str("action", e.Action).Str("user", e.User).Str("reason", err.Error()).Msg("audit entry could not be stored")
	}
	return err
}

// auditReload records a config reload in the audit trail.
func (b *Broker) auditReload(result string, err error) {
	e := wire.AuditEntry{At: time.Now().UTC(), User: "config-file", Action: "config.reload", Result: result, IDs: []string{}}
	if err != nil {
		e.Result = result + ": " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	go func() { _ = b.audit(context.Background(), e) }()
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
