package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/routing"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Broker is a running broker: NATS, listeners, router and delivery workers.
type Broker struct {
	metrics   *metrics
	admin     *http.Server
	adminAddr net.Addr
	stopping  atomic.Bool
	cfg       *Config
	log       zerolog.Logger
	nats      *NATS
	servers   map[string]*mllp.Server
	addrs     map[string]net.Addr
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	listening sync.WaitGroup
}

// Hooks observe the pipeline, for metrics and tests. Nil fields are skipped.
type Hooks struct {
	OnRouted func(inSeq uint64, destinations []string)
	OnDone   func(destination, outcome string, h nats.Header)
}

// Start opens NATS and its streams, binds every listener, and starts the
// router and one delivery worker per destination. cfg must be valid.
func Start(ctx context.Context, cfg *Config, log zerolog.Logger, hooks Hooks) (*Broker, error) {
	n, err := OpenNATS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rts, err := CompileRoutes(cfg)
	if err != nil {
		n.Close()
		return nil, err
	}
	b := &Broker{cfg: cfg, log: log, nats: n, servers: map[string]*mllp.Server{}, addrs: map[string]net.Addr{}, metrics: newMetrics()}
	committer := n.Committer(cfg.NATS.StoreTimeout)
	for _, l := range cfg.Listeners {
		if err := b.listen(l, committer); err != nil {
			b.stopListeners(context.Background())
			n.Close()
			return nil, err
		}
	}
	var names []string
	for _, d := range cfg.Destinations {
		names = append(names, d.Name)
	}
	b.metrics.watch(b.servers, n.JetStream, names, n.Syncer)
	if cfg.Admin.Addr != "" {
		if err := b.startAdmin(cfg.Admin.Addr); err != nil {
			b.stopListeners(context.Background())
			n.Close()
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	m := b.metrics
	router := &routing.Router{JetStream: n.JetStream, Routes: rts, UnroutedTo: cfg.Unrouted.To,
		Partitions: partitions(cfg), Log: log, Sync: n.Sync, OnRouted: func(seq uint64, dests []string) {
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
	b.goRun("router", router.Run, runCtx)
	for _, d := range cfg.Destinations {
		name := d.Name
		w := &routing.Worker{JetStream: n.JetStream, Dest: destination(d), Log: log, Sync: n.Sync,
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
			OnAttempt: func(o routing.Outcome, took time.Duration) {
				m.attemptSecs.WithLabelValues(name).Observe(took.Seconds())
				if o != routing.Delivered {
					m.retried.WithLabelValues(name).Inc()
				}
			}}
		b.goRun("destination "+d.Name, w.Run, runCtx)
	}
	log.Info().Int("listeners", len(cfg.Listeners)).Int("routes", len(cfg.Routes)).Int("destinations", len(cfg.Destinations)).
		Bool("embedded_nats", cfg.NATS.URL == "").Str("durability", cfg.NATS.Durability).Msg("broker started")
	return b, nil
}

func (b *Broker) listen(l ListenerConfig, c Committer) error {
	tc, err := serverTLS(l.TLS)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	in := NewIngest(l, c, b.log)
	in.metrics = b.metrics
	srv := &mllp.Server{Name: l.Name, Handler: in, TLSConfig: tc, MaxConns: l.MaxConnections,
		MaxFrameBytes: l.MaxMessageBytes, IdleTimeout: l.IdleTimeout, ReadTimeout: l.ReadTimeout, Logger: b.log}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	b.servers[l.Name], b.addrs[l.Name] = srv, ln.Addr()
	b.listening.Add(1)
	go func() {
		defer b.listening.Done()
		if err := srv.Serve(ln); !errors.Is(err, mllp.ErrServerClosed) {
			b.log.Error().Str("listener", l.Name).Err(err).Msg("listener stopped")
		}
	}()
	b.log.Info().Str("listener", l.Name).Str("addr", ln.Addr().String()).Msg("listening")
	return nil
}

// serverTLS loads a listener's TLS files; nil without them.
func serverTLS(t TLSFiles) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	return mllp.ServerTLSConfig(t.CertFile, t.KeyFile, t.ClientCAFile)
}

func (b *Broker) goRun(what string, run func(context.Context) error, ctx context.Context) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := run(ctx); err != nil {
			b.log.Error().Str("component", what).Err(err).Msg("stopped with an error")
		}
	}()
}

// Addr is the bound address of a listener (useful with port 0).
func (b *Broker) Addr(listener string) net.Addr { return b.addrs[listener] }

// NATS gives access to the streams, for tools and tests.
func (b *Broker) NATS() *NATS { return b.nats }

// Shutdown stops accepting, lets messages in flight be stored and
// acknowledged, stops the router and workers (a message being retried
// stays queued), and closes NATS.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.stopping.Store(true)
	err := b.stopListeners(ctx)
	b.cancel()
	b.wg.Wait()
	if b.admin != nil {
		_ = b.admin.Shutdown(ctx)
	}
	b.nats.Close()
	b.log.Info().Msg("broker stopped")
	return err
}

func (b *Broker) stopListeners(ctx context.Context) error {
	var errs []error
	for _, s := range b.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	b.listening.Wait()
	return errors.Join(errs...)
}

// CompileRoutes compiles the config's routes, conditions and transforms;
// cfg was validated, so a problem here means a file it names changed since.
func CompileRoutes(cfg *Config) ([]routing.Route, error) {
	var out []routing.Route
	for i, r := range cfg.Routes {
		p, problems := cfg.Pipeline(i)
		if len(problems) > 0 {
			return nil, fmt.Errorf("route %s: transform%s: %s", r.Name, problems[0].Key, problems[0].Message)
		}
		when, wproblems := routing.CompileWhen(r.When)
		if len(wproblems) > 0 {
			return nil, fmt.Errorf("route %s: when.%s: %s", r.Name, wproblems[0].Key, wproblems[0].Message)
		}
		out = append(out, routing.Route{Name: r.Name, From: r.From, When: when, To: r.To, Transform: p})
	}
	return out, nil
}

func partitions(cfg *Config) map[string]routing.Partitioning {
	p := map[string]routing.Partitioning{}
	for _, d := range cfg.Destinations {
		if d.Ordering == "key" {
			p[d.Name] = routing.Partitioning{Path: hl7.MustParsePath(d.PartitionBy), Partitions: d.Partitions}
		}
	}
	return p
}

func destination(d DestinationConfig) routing.Destination {
	rd := routing.Destination{Name: d.Name, Ordering: d.Ordering, Concurrency: d.Concurrency, Partitions: d.Partitions,
		MaxAttempts: d.Retry.MaxAttempts, Backoff: d.Retry.Backoff, OnReject: d.OnReject, Timeout: d.Timeout}
	rd.NewDeliverer = func() (routing.Deliverer, error) {
		var tc *tls.Config
		if d.TLS.CAFile != "" || d.TLS.CertFile != "" {
			var err error
			if tc, err = mllp.ClientTLSConfig(d.TLS.CAFile, d.TLS.CertFile, d.TLS.KeyFile, ""); err != nil {
				return nil, err
			}
		}
		switch d.Type {
		case "mllp":
			return &routing.MLLPDeliverer{Client: &mllp.Client{Addr: d.Addr, TLSConfig: tc, ReplyTimeout: d.Timeout, MaxBackoff: d.Timeout}}, nil
		case "http":
			return routing.NewHTTPDeliverer(d.URL, d.ContentType, d.Headers, d.Timeout, tc), nil
		default:
			return &routing.FileDeliverer{Dir: d.Dir}, nil
		}
	}
	return rd
}
