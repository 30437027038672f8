package broker

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/store"
)

// sourceRun is one running source other than an MLLP listener.
type sourceRun struct {
	cfg    config.SourceConfig
	cancel context.CancelFunc
	done   chan struct{} // closed when it has stopped
	// problem, if set, says what is wrong with it now ("" when nothing).
	problem func() string
}

// startSource starts a source under supervision. b.mu is held or the
// broker is starting.
func (b *Broker) startSource(s config.SourceConfig) error {
	// One flush per file or per request, acknowledged after it (Sync).
	committer := b.store.Committer(b.nats.BatchCommitter(b.cfg.NATS.StoreTimeout))
	in := ingest.New(s.Listener(), committer, b.log)
	in.Metrics, in.Reuse, in.Events = b.metrics.ingest(), b.reuse, b.events
	in.Charset = &ingest.CharsetCheck{Configured: s.Charset, Warnings: b.metrics.files.CharsetWarnings}
	if b.index != nil {
		in.SearchKeys = b.index.KeyPaths()
	}
	src, err := ingest.NewSource(s, ingest.SourceEnv{Ingest: in, Log: b.log, Sync: b.nats.Sync, Files: b.metrics.files,
		LastPlace: func(ctx context.Context) (store.FilePlace, bool, error) { return b.nats.LastFilePlace(ctx, s.Name) },
		Token:     b.cfg.SourceToken})
	if err != nil {
		return err
	}
	var problem func() string
	if t, ok := src.(ingest.Troubled); ok {
		problem = t.Problem
	}
	ctx, cancel := context.WithCancel(b.runCtx)
	r := &sourceRun{cfg: s, cancel: cancel, done: make(chan struct{}), problem: problem}
	b.sources[s.Name] = r
	go func() {
		defer close(r.done)
		b.sup.run(ctx, "source:"+s.Name, src.Run)
	}()
	return nil
}

// stopSources stops the named sources; a file being read is left where
// it is and read again (after what was stored) on the next start.
func (b *Broker) stopSources(names []string) {
	for _, name := range names {
		if run, ok := b.sources[name]; ok {
			run.cancel()
			<-run.done
			delete(b.sources, name)
		}
	}
}

func (b *Broker) stopAllSources() { b.stopSources(slices.Collect(maps.Keys(b.sources))) }

// reloadSources stops removed and changed sources and starts new and
// changed ones. b.mu is held.
func (b *Broker) reloadSources(old, next []config.SourceConfig) error {
	oldS := byName(old, func(s config.SourceConfig) string { return s.Name })
	newS := byName(next, func(s config.SourceConfig) string { return s.Name })
	var stop []string
	for name, o := range oldS {
		if n, ok := newS[name]; !ok || !reflect.DeepEqual(o, n) {
			stop = append(stop, name)
		}
	}
	b.stopSources(stop)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(newS)) {
		if _, running := b.sources[name]; !running {
			errs = append(errs, b.startSource(newS[name]))
		}
	}
	return errors.Join(errs...)
}
