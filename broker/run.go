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
	"github.com/hl7broker/hl7broker/alerts"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/internal/memory"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/hl7broker/hl7broker/script"
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
	recent      *ingest.Recent // nil where the store is shared
	router      *routing.Router
	sup         *supervisor
	store       *store.Health
	runCtx      context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup // the indexer, the reconciler, the pause watcher
	host        *host          // every listener, source, destination worker, router...
	loadedAt    time.Time      // when the config in force was loaded

	events       *store.EventLog // nil: history off
	eventsCancel context.CancelFunc
	eventsDone   chan struct{}
	index        *history.Index   // nil: history off
	indexer      *history.Indexer // nil: history off
	ops          *history.Ops
	tokens       *admin.Tokens
	people       *admin.Ways // how people sign in (admin.oidc, admin.ldap)
	lastErr      sync.Map    // destination -> lastError
	rates        rateBook
	alerts       *alerts.Engine

	mu         sync.Mutex // guards what follows; held for a whole reload
	cfg        *config.Config
	lastReload reloadStatus
	paused     map[string]bool // destinations paused (HL7_STATE)
}

// listenerRun is one bound listener: its server and address (a part's
// value).
type listenerRun struct {
	srv  *mllp.Server
	addr net.Addr
}

// workerRun is one destination's delivery worker (a part's value).
type workerRun struct {
	paused bool // not running: the destination is paused
}

// workerConfig is what a destination's worker runs with: a change of
// either restarts it.
type workerConfig struct {
	d       config.DestinationConfig
	paused  bool
	encoder string // config.EncoderDigest: what its encoder runs with
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
	table, err := routingTable(cfg, log)
	if err != nil {
		n.Close()
		_ = stopTracing(ctx)
		return nil, err
	}
	b := &Broker{cfg: cfg, log: log, nats: n, hooks: hooks, metrics: newMetrics(), loadedAt: time.Now(),
		tokens: &admin.Tokens{}, people: &admin.Ways{}, stopTracing: stopTracing}
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
	oidc, ldap, err := signInWays(cfg)
	if err != nil {
		return fail(err)
	}
	b.people.Set(oidc, ldap)
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
	b.host = newHost(b.runCtx, b.sup)
	b.reuse = ingest.NewReuseTracker(cfg.NATS.DuplicateWindow)
	if !n.Shared() {
		// Resends within the window are answered from memory; what was
		// stored in the window before this start is read back first, so
		// that a crash forgets none of them.
		b.recent = ingest.NewRecent(cfg.NATS.DuplicateWindow)
		began := time.Now()
		read, err := b.recent.Load(ctx, n.JetStream, began.Add(-cfg.NATS.DuplicateWindow-time.Minute))
		if err != nil {
			return fail(err)
		}
		log.Info().Int("messages", read).Dur("took", time.Since(began)).Msg("recent messages read back: resends within the duplicate window are recognised")
	}
	if b.alerts, err = b.newAlerts(cfg, time.Now()); err != nil {
		return fail(err)
	}
	// What runs, in order; one unwind if any part cannot start.
	unwind := func(err error) (*Broker, error) {
		_ = b.host.stopAll(context.Background())
		if b.admin != nil {
			_ = b.admin.Shutdown(context.Background())
		}
		b.cancel()
		b.wg.Wait()
		return fail(err)
	}
	for _, step := range []func() error{
		func() error { return b.host.sync(ctx, "listener", b.listenerParts(cfg)) },
		func() error { return b.host.sync(ctx, "source", b.sourceParts(cfg)) },
		func() error { return b.startAdmin(cfg) },
		func() error { return b.startPipeline(cfg, table) },
		func() error { return b.host.sync(ctx, "destination", b.workerParts(cfg)) },
	} {
		if err := step(); err != nil {
			return unwind(err)
		}
	}
	b.metrics.watch(b, n.Syncer)
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Key).Msg(w.Message)
	}
	log.Info().Int("listeners", len(cfg.Listeners)).Int("routes", len(cfg.Routes)).Int("destinations", len(cfg.Destinations)).
		Bool("embedded_nats", cfg.NATS.URL == "").Str("durability", cfg.NATS.Durability).Msg("broker started")
	return b, nil
}

// startAdmin starts the admin server, if configured.
func (b *Broker) startAdmin(cfg *config.Config) error {
	if cfg.Admin.Addr == "" {
		return nil
	}
	api := &admin.API{Tokens: b.tokens, Ops: b.ops, Status: b.status, Audit: b.audit,
		AuditReady: func(context.Context) error { return b.nats.AuditRoom() }, SearchKeys: slices.Sorted(maps.Keys(cfg.History.SearchKeys)),
		ContentSearch: cfg.History.Enabled && cfg.History.ContentSearch,
		Alerts:        alertsAPI{b}, Sessions: admin.Sessions{Store: store.SessionKV{JetStream: b.nats.JetStream}, Max: cfg.Admin.SessionMax, Idle: cfg.Admin.SessionIdle},
		People: b.people, Searches: store.SearchesKV{JetStream: b.nats.JetStream}}
	b.admin = &admin.Server{Metrics: b.metrics.reg, Ready: b.readiness, Log: b.log, API: api, CertFile: cfg.Admin.TLS.CertFile, KeyFile: cfg.Admin.TLS.KeyFile}
	if err := b.admin.Start(cfg.Admin.Addr); err != nil {
		b.admin = nil
		return fmt.Errorf("admin: %w", err)
	}
	if b.tokens.Len() == 0 {
		b.log.Warn().Msg("admin.tokens is empty: the admin API (/api/v1) refuses every request")
	}
	return nil
}

// startPipeline starts the router and the parts that keep the broker: the
// janitor, the memory trimmer, the rate sampler, the store's keeper, and
// history's.
func (b *Broker) startPipeline(cfg *config.Config, table *routing.Table) error {
	n, log, m, hooks := b.nats, b.log, b.metrics, b.hooks
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
	parts := []part{
		fixedPart("memtrim", func(ctx context.Context) error { memory.NewTrimmer().Run(ctx); return nil }),
		fixedPart("rates", b.sampleRates),
		fixedPart("windows", func(ctx context.Context) error { ingest.Forget(ctx, b.reuse, b.recent); return nil }),
		fixedPart("router", b.router.Run),
		fixedPart("janitor", func(ctx context.Context) error { janitor.Run(ctx); return nil }),
		fixedPart("alerts", b.alerts.Run),
	}
	if n.Server() != nil {
		parts = append(parts, fixedPart("store", store.NewKeeper(n, cfg, b.store, log).Run))
	}
	if b.recent != nil {
		parts = append(parts, fixedPart("recent", func(ctx context.Context) error { b.recent.ReadBack(ctx, n.JetStream, log); return nil }))
	}
	for _, p := range parts {
		if err := b.host.start(p); err != nil {
			return err
		}
	}
	return nil
}

// fixedPart is a part no config changes, that only runs.
func fixedPart(name string, run func(context.Context) error) part {
	return part{name: name, start: func() (func(context.Context) error, func(context.Context) error, any, error) {
		return run, nil, nil, nil
	}}
}

// routingTable compiles what the router routes by, and sends what the
// config's scripts log to log when the config says so (scripts.log).
func routingTable(cfg *config.Config, log zerolog.Logger) (*routing.Table, error) {
	if e := cfg.ScriptEngine(); e != nil && cfg.Scripts.Log {
		e.SetLog(func(l script.LogLine) {
			log.WithLevel(scriptLevel(l.Level)).Str("script", l.Script).Msg(l.Text)
		})
	}
	rts, err := CompileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	return &routing.Table{Routes: rts, UnroutedTo: cfg.Unrouted.To, Partitions: partitions(cfg)}, nil
}

// workerParts are cfg's destinations' workers, each paused or not.
func (b *Broker) workerParts(cfg *config.Config) []part {
	var parts []part
	for _, d := range cfg.Destinations {
		parts = append(parts, b.workerPart(cfg, d, b.paused[d.Name]))
	}
	return parts
}

// workerPart is destination d's delivery worker; a paused destination's
// part is held: nothing runs, its queue fills.
func (b *Broker) workerPart(cfg *config.Config, d config.DestinationConfig, paused bool) part {
	name, m, hooks := d.Name, b.metrics, b.hooks
	return part{name: "destination:" + name, config: workerConfig{d: d, paused: paused, encoder: cfg.EncoderDigest(d)},
		start: func() (func(context.Context) error, func(context.Context) error, any, error) {
			value := &workerRun{paused: paused}
			if paused {
				return nil, nil, value, nil
			}
			enc, err := cfg.Encoder(d)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("destination %s: encoder: %w", name, err)
			}
			w := &delivery.Worker{JetStream: b.nats.JetStream, Dest: destination(d, enc), Log: b.log, Sync: b.nats.Sync, Events: b.events, Shared: b.nats.Shared(),
				OnDone: func(outcome string, h nats.Header) {
					if outcome == "delivered" {
						m.delivered.WithLabelValues(name).Inc()
						m.lastSuccess.WithLabelValues(name).SetToCurrentTime()
						b.lastErr.Delete(name) // the last error is shown until a delivery succeeds
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
						now := time.Now().UTC()
						le := lastError{reason: res.Reason, at: now, since: now}
						if prev, ok := b.lastErr.Load(name); ok {
							le.since = prev.(lastError).since
						}
						b.lastErr.Store(name, le)
					}
				}}
			return w.Run, nil, value, nil
		}}
}

// stopWorker stops a destination's worker; a message being delivered is
// left queued.
func (b *Broker) stopWorker(name string) {
	_ = b.host.stop(context.Background(), "destination:"+name)
}

// listenerParts are cfg's MLLP listeners.
func (b *Broker) listenerParts(cfg *config.Config) []part {
	var parts []part
	for _, l := range cfg.Listeners {
		parts = append(parts, b.listenerPart(cfg, l))
	}
	return parts
}

// listenerPart binds listener l when it starts; a shutdown lets the
// messages in flight finish.
func (b *Broker) listenerPart(cfg *config.Config, l config.ListenerConfig) part {
	return part{name: "listener:" + l.Name, config: l, start: func() (func(context.Context) error, func(context.Context) error, any, error) {
		tc, err := serverTLS(l.TLS)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		in := ingest.New(l, b.committer, b.log)
		in.Metrics, in.Reuse, in.Events, in.Recent = b.metrics.ingest(), b.reuse, b.events, b.recent
		if in.Profile, err = cfg.LoadProfile(l.Profile); err != nil {
			return nil, nil, nil, fmt.Errorf("listener %s: profile: %w", l.Name, err)
		}
		in.Rules = cfg.SiteRules(l.Name)
		if l.Charset != "" {
			in.Charset = &ingest.CharsetCheck{Configured: l.Charset, Warnings: b.metrics.files.CharsetWarnings}
		}
		if b.index != nil {
			in.SearchKeys = b.index.KeyPaths()
		}
		srv := &mllp.Server{Name: l.Name, Handler: in, TLSConfig: tc, MaxConns: l.MaxConnections, Budget: b.budget,
			MaxFrameBytes: l.MaxMessageBytes, IdleTimeout: max(l.IdleTimeout, 0), ReadTimeout: l.ReadTimeout, Logger: b.log}
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		run := &listenerRun{srv: srv, addr: ln.Addr()}
		b.log.Info().Str("listener", l.Name).Str("addr", run.addr.String()).Msg("listening")
		serve := func(ctx context.Context) error {
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
		}
		return serve, srv.Shutdown, run, nil
	}}
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
	if run, ok := valuesOf[*listenerRun](b.host, "listener")[listener]; ok {
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
	b.mu.Lock() // no reload meanwhile
	// Stop taking messages in first, then delivering; then the rest, the
	// last started first, without b.mu (the rate sampler takes it).
	err := errors.Join(b.host.sync(ctx, "listener", nil), b.host.sync(ctx, "source", nil))
	_ = b.host.sync(ctx, "destination", nil)
	b.mu.Unlock()
	_ = b.host.stopAll(ctx)
	b.cancel()
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

func destination(d config.DestinationConfig, enc *script.Script) delivery.Destination {
	rd := delivery.Destination{Name: d.Name, Type: d.Type, Ordering: d.Ordering, Concurrency: d.Concurrency, Partitions: d.Partitions,
		MaxAttempts: d.Retry.MaxAttempts, Backoff: d.Retry.Backoff, OnReject: d.OnReject, Timeout: d.Timeout}
	rd.NewDeliverer = func() (delivery.Deliverer, error) { return delivery.New(d, enc) }
	return rd
}

func scriptLevel(level string) zerolog.Level {
	if l, err := zerolog.ParseLevel(level); err == nil {
		return l
	}
	return zerolog.InfoLevel
}
