package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// routerSyncWait is how long the router waits for a senders' flush to
// make its copies durable before it begins one of its own. While messages
// arrive, ingest flushes more often than that and the router's flushes
// vanish: with one sender, each message used to wait for two. When ingest
// is quiet, a group of inputs is acked 5 ms later; nothing else waits.
const routerSyncWait = 5 * time.Millisecond

// Broker is a running broker: NATS, listeners, router and delivery
// workers. Reload changes listeners, routes and destinations while it runs.
type Broker struct {
	// stopTracing flushes and stops the trace export (tracing.enabled).
	stopTracing func(context.Context) error
	metrics     *metrics
	admin       *admin.Server
	stopping    atomic.Bool
	log         zerolog.Logger
	nats        *store.NATS
	hooks       Hooks
	committer   store.Committer
	budget      *mllp.Budget // shared by every listener: frames being received, connections
	reuse       *ingest.ReuseTracker
	router      *routing.Router
	sup         *supervisor
	store       *store.Health
	runCtx      context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup // the router, the janitor, the store keeper, the indexer
	loadedAt    time.Time      // when the config in force was loaded

	events       *store.EventLog // nil: history off
	eventsCancel context.CancelFunc
	eventsDone   chan struct{}
	index        *history.Index   // nil: history off
	indexer      *history.Indexer // nil: history off
	ops          *history.Ops
	tokens       *admin.Tokens
	lastErr      sync.Map // destination -> lastError
	rates        rateBook

	mu         sync.Mutex // guards what follows; held for a whole reload
	cfg        *config.Config
	listeners  map[string]*listenerRun
	sources    map[string]*sourceRun
	workers    map[string]*workerRun
	lastReload reloadStatus
	paused     map[string]bool // destinations paused (HL7_STATE)
}

// listenerRun is one bound listener.
type listenerRun struct {
	cfg    config.ListenerConfig
	srv    *mllp.Server
	addr   net.Addr
	cancel context.CancelFunc // ends its supervision; Shutdown then ends Serve
	done   chan struct{}      // closed when Serve has returned for good
}

// workerRun is one destination's running delivery worker.
type workerRun struct {
	cfg    config.DestinationConfig
	paused bool // not running: the destination is paused
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has stopped
}

// Hooks observe the pipeline, for metrics and tests. Nil fields are skipped.
type Hooks struct {
	OnRouted func(inSeq uint64, destinations []string)
	OnDone   func(destination, outcome string, h nats.Header)
	OnReload func(err error) // after each reload: nil when applied
}

// Start opens NATS and its streams, binds every listener, and starts the
// router and one delivery worker per destination. cfg must be valid.
func Start(ctx context.Context, cfg *config.Config, log zerolog.Logger, hooks Hooks) (*Broker, error) {
	stopTracing, err := startTracing(cfg, log)
	if err != nil {
		return nil, err
	}
	n, err := store.Open(ctx, cfg)
	if err != nil {
		_ = stopTracing(ctx)
		return nil, err
	}
	table, err := routingTable(cfg)
	if err != nil {
		n.Close()
		_ = stopTracing(ctx)
		return nil, err
	}
	b := &Broker{cfg: cfg, log: log, nats: n, hooks: hooks, metrics: newMetrics(), loadedAt: time.Now(),
		listeners: map[string]*listenerRun{}, sources: map[string]*sourceRun{}, workers: map[string]*workerRun{}, tokens: &admin.Tokens{}, stopTracing: stopTracing}
	fail := func(err error) (*Broker, error) {
		if b.index != nil {
			b.index.Close()
		}
		n.Close()
		_ = stopTracing(ctx)
		return nil, err
	}
	tokens, missing, err := apiTokens(cfg)
	if err != nil {
		return fail(err)
	}
	b.tokens.Set(tokens)
	b.warnMissingTokens(missing)
	if err := b.openHistory(cfg); err != nil {
		return fail(err)
	}
	if err := b.loadPaused(ctx); err != nil {
		return fail(err)
	}
	b.sup = newSupervisor(log, b.metrics)
	b.store = &store.Health{}
	b.store.Register(b.metrics.reg)
	b.committer = b.store.Committer(n.Committer(cfg.NATS.StoreTimeout))
	b.budget = newBudget(cfg, log)
	b.metrics.watchBudget(b.budget)
	b.runCtx, b.cancel = context.WithCancel(context.Background())
	b.reuse = ingest.NewReuseTracker(cfg.NATS.DuplicateWindow)
	for _, l := range cfg.Listeners {
		if err := b.listen(l); err != nil {
			b.stopAllListeners(context.Background())
			b.cancel()
			return fail(err)
		}
	}
	for _, s := range cfg.Sources {
		if err := b.startSource(s); err != nil {
			b.stopAllListeners(context.Background())
			b.stopAllSources()
			b.cancel()
			return fail(err)
		}
	}
	b.metrics.watch(b, n.Syncer)
	if cfg.Admin.Addr != "" {
		api := &admin.API{Tokens: b.tokens, Ops: b.ops, Status: b.status, Audit: b.audit,
			AuditReady: func(context.Context) error { return b.nats.AuditRoom() }, SearchKeys: slices.Sorted(maps.Keys(cfg.History.SearchKeys))}
		b.admin = &admin.Server{Metrics: b.metrics.reg, Ready: b.readiness, Log: log, API: api, CertFile: cfg.Admin.TLS.CertFile, KeyFile: cfg.Admin.TLS.KeyFile}
		if err := b.admin.Start(cfg.Admin.Addr); err != nil {
			b.stopAllListeners(context.Background())
			b.cancel()
			return fail(fmt.Errorf("admin: %w", err))
		}
		if b.tokens.Len() == 0 {
			log.Warn().Msg("admin.tokens is empty: the admin API (/api/v1) refuses every request")
		}
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Key).Msg(w.Message)
	}
	m := b.metrics
	routerSync := func(ctx context.Context) error { return n.SyncSoon(ctx, routerSyncWait) }
	pinTTL := routing.DefaultPinnedTTL
	if n.Shared() {
		pinTTL = routing.SharedPinnedTTL
	}
	b.router = &routing.Router{JetStream: n.JetStream, Log: log, Sync: routerSync, PinnedTTL: pinTTL, Events: b.events, OnMatched: func(routes []string) {
		for _, r := range routes {
			m.matched.WithLabelValues(r).Inc()
		}
	}, OnRouted: func(seq uint64, dests []string) {
		if len(dests) == 0 {
			m.unrouted.Inc()
		}
		for _, d := range dests {
			m.routed.WithLabelValues(d).Inc()
		}
		if hooks.OnRouted != nil {
			hooks.OnRouted(seq, dests)
		}
	}}
	b.router.OnDeadLettered = func(string) { m.deadLettered.WithLabelValues(wire.TransformDLQ).Inc() }
	b.router.SetTable(table)
	keep := cfg.NATS.DuplicateWindow
	if cfg.History.Enabled {
		keep = max(keep, cfg.History.KeepCopies) // shown and resent as sent
	}
	janitor := store.NewJanitor(n.JetStream, keep, log)
	b.runHistory()
	b.wg.Add(2)
	go func() { // supervised, as everything long-running: a panic in it is recovered and it starts again
		defer b.wg.Done()
		b.sup.run(b.runCtx, "memtrim", func(ctx context.Context) error { newMemTrimmer().run(ctx); return nil })
	}()
	go func() {
		defer b.wg.Done()
		b.sup.run(b.runCtx, "rates", b.sampleRates)
	}()
	if n.Server() != nil {
		keeper := store.NewKeeper(n, cfg, b.store, log)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.sup.run(b.runCtx, "store", keeper.Run)
		}()
	}
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.sup.run(b.runCtx, "router", b.router.Run)
	}()
	go func() {
		defer b.wg.Done()
		b.sup.run(b.runCtx, "janitor", func(ctx context.Context) error { janitor.Run(ctx); return nil })
	}()
	for _, d := range cfg.Destinations {
		b.startWorker(d)
	}
	log.Info().Int("listeners", len(cfg.Listeners)).Int("routes", len(cfg.Routes)).Int("destinations", len(cfg.Destinations)).
		Bool("embedded_nats", cfg.NATS.URL == "").Str("durability", cfg.NATS.Durability).Msg("broker started")
	return b, nil
}

// routingTable compiles what the router routes by.
func routingTable(cfg *config.Config) (*routing.Table, error) {
	rts, err := CompileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	return &routing.Table{Routes: rts, UnroutedTo: cfg.Unrouted.To, Partitions: partitions(cfg)}, nil
}

// startWorker starts destination d's delivery worker. b.mu is held or
// the broker is starting.
func (b *Broker) startWorker(d config.DestinationConfig) {
	name, m, hooks := d.Name, b.metrics, b.hooks
	if b.paused[name] {
		done := make(chan struct{})
		close(done)
		b.workers[name] = &workerRun{cfg: d, paused: true, cancel: func() {}, done: done}
		return
	}
	w := &delivery.Worker{JetStream: b.nats.JetStream, Dest: destination(d), Log: b.log, Sync: b.nats.Sync, Events: b.events, Shared: b.nats.Shared(),
		OnDone: func(outcome string, h nats.Header) {
			if outcome == "delivered" {
				m.delivered.WithLabelValues(name).Inc()
			} else {
				m.deadLettered.WithLabelValues(name).Inc()
			}
			if hooks.OnDone != nil {
				hooks.OnDone(name, outcome, h)
			}
		},
		OnAttempt: func(res delivery.Result, took time.Duration) {
			m.attemptSecs.WithLabelValues(name).Observe(took.Seconds())
			if res.Outcome != delivery.Delivered {
				m.retried.WithLabelValues(name).Inc()
				b.lastErr.Store(name, lastError{reason: res.Reason, at: time.Now().UTC()})
			}
		}}
	ctx, cancel := context.WithCancel(b.runCtx)
	run := &workerRun{cfg: d, cancel: cancel, done: make(chan struct{})}
	b.workers[name] = run
	go func() {
		defer close(run.done)
		b.sup.run(ctx, "destination:"+name, w.Run)
	}()
}

// stopWorker stops a destination's worker; a message being delivered is
// left queued. b.mu is held.
func (b *Broker) stopWorker(name string) {
	if run, ok := b.workers[name]; ok {
		run.cancel()
		<-run.done
		delete(b.workers, name)
	}
}

func (b *Broker) listen(l config.ListenerConfig) error {
	tc, err := serverTLS(l.TLS)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	in := ingest.New(l, b.committer, b.log)
	in.Metrics, in.Reuse, in.Events = b.metrics.ingest(), b.reuse, b.events
	if b.index != nil {
		in.SearchKeys = b.index.KeyPaths()
	}
	srv := &mllp.Server{Name: l.Name, Handler: in, TLSConfig: tc, MaxConns: l.MaxConnections, Budget: b.budget,
		MaxFrameBytes: l.MaxMessageBytes, IdleTimeout: max(l.IdleTimeout, 0), ReadTimeout: l.ReadTimeout, Logger: b.log}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	ctx, cancel := context.WithCancel(b.runCtx)
	run := &listenerRun{cfg: l, srv: srv, addr: ln.Addr(), cancel: cancel, done: make(chan struct{})}
	b.listeners[l.Name] = run
	go func() {
		defer close(run.done)
		b.sup.run(ctx, "listener:"+l.Name, func(ctx context.Context) error {
			if ln == nil { // a restart: bind again where it was bound
				var err error
				if ln, err = net.Listen("tcp", run.addr.String()); err != nil {
					return err
				}
			}
			err := srv.Serve(ln)
			ln = nil
			if errors.Is(err, mllp.ErrServerClosed) && ctx.Err() == nil {
				return errors.New("closed without a shutdown")
			}
			return err
		})
	}()
	b.log.Info().Str("listener", l.Name).Str("addr", run.addr.String()).Msg("listening")
	return nil
}

// serverTLS loads a listener's TLS files; nil without them.
func serverTLS(t config.TLSFiles) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	return mllp.ServerTLSConfig(t.CertFile, t.KeyFile, t.ClientCAFile)
}

// Addr is the bound address of a listener (useful with port 0); nil if
// there is none by that name.
func (b *Broker) Addr(listener string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if run, ok := b.listeners[listener]; ok {
		return run.addr
	}
	return nil
}

// NATS gives access to the streams, for tools and tests.
func (b *Broker) NATS() *store.NATS { return b.nats }

// Shutdown stops accepting, lets messages in flight be stored and
// acknowledged, stops the router and workers (a message being retried
// stays queued), and closes NATS.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.stopping.Store(true)
	b.mu.Lock()
	err := b.stopAllListeners(ctx)
	b.stopAllSources()
	b.cancel()
	for name := range b.workers {
		b.stopWorker(name)
	}
	b.mu.Unlock()
	b.wg.Wait()
	if b.admin != nil {
		_ = b.admin.Shutdown(ctx)
	}
	b.closeHistory()
	b.nats.Close()
	if err := b.stopTracing(ctx); err != nil {
		b.log.Warn().Str("reason", secret.Error(err).Error()).Msg("tracing: the last spans could not be exported")
	}
	b.log.Info().Msg("broker stopped")
	return err
}

// stopListeners shuts down the named listeners, letting messages in
// flight finish. b.mu is held or the broker is starting.
func (b *Broker) stopListeners(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		if run, ok := b.listeners[name]; ok {
			run.cancel()
			errs = append(errs, run.srv.Shutdown(ctx))
			<-run.done
			delete(b.listeners, name)
		}
	}
	return errors.Join(errs...)
}

// stopAllListeners shuts down every listener.
func (b *Broker) stopAllListeners(ctx context.Context) error {
	return b.stopListeners(ctx, slices.Collect(maps.Keys(b.listeners)))
}

// CompileRoutes is cfg's routes as config compiled them, in the router's
// type.
func CompileRoutes(cfg *config.Config) ([]routing.Route, error) {
	compiled, err := cfg.CompiledRoutes()
	if err != nil {
		return nil, err
	}
	out := make([]routing.Route, 0, len(compiled))
	for _, cr := range compiled {
		out = append(out, routing.Route(cr))
	}
	return out, nil
}

func partitions(cfg *config.Config) map[string]routing.Partitioning {
	p := map[string]routing.Partitioning{}
	for _, d := range cfg.Destinations {
		if d.Ordering == "key" {
			p[d.Name] = routing.Partitioning{Path: hl7.MustParsePath(d.PartitionBy), Partitions: d.Partitions}
		}
	}
	return p
}

func destination(d config.DestinationConfig) delivery.Destination {
	rd := delivery.Destination{Name: d.Name, Type: d.Type, Ordering: d.Ordering, Concurrency: d.Concurrency, Partitions: d.Partitions,
		MaxAttempts: d.Retry.MaxAttempts, Backoff: d.Retry.Backoff, OnReject: d.OnReject, Timeout: d.Timeout}
	rd.NewDeliverer = func() (delivery.Deliverer, error) { return delivery.New(d) }
	return rd
}
