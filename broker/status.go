package broker

import (
	"context"
	"github.com/hl7broker/hl7broker/internal/buildinfo"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// lastError is a destination's last failed attempt, and when the
// failures began (the first failure after a success).
type lastError struct {
	reason    string
	at, since time.Time
}

func counterValue(c prometheus.Collector) float64 {
	m, ok := c.(prometheus.Metric)
	if !ok {
		return 0
	}
	var d dto.Metric
	if m.Write(&d) != nil {
		return 0
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return 0
}

// counters reads the counters rates are told from.
func (b *Broker) counters() map[string]float64 {
	b.mu.Lock()
	origins, dests := b.cfg.Origins(), b.cfg.Destinations
	b.mu.Unlock()
	out := map[string]float64{}
	for _, name := range origins {
		out["l:"+name] = counterValue(b.metrics.received.WithLabelValues(name))
	}
	for _, d := range dests { // the queues' depths are asked of the store: not under b.mu
		out["d:"+d.Name] = counterValue(b.metrics.delivered.WithLabelValues(d.Name))
		out["q:"+d.Name] = store.QueueDepth(b.nats.JetStream, d.Name)
	}
	return out
}

// sampleRates samples the counters every 5 s until ctx ends.
func (b *Broker) sampleRates(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	b.rates.add(time.Now(), b.counters())
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			b.rates.add(now, b.counters())
		}
	}
}

// status is GET /api/v1/status.
func (b *Broker) status(ctx context.Context) admin.Status {
	now := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b.mu.Lock()
	cfg, reload, loadedAt := b.cfg, b.lastReload, b.loadedAt
	st := admin.Status{Version: buildinfo.Read().String()}
	listeners := valuesOf[*listenerRun](b.host, "listener")
	for _, l := range cfg.Listeners {
		ls := admin.ListenerStatus{Name: l.Name, Type: "mllp"}
		if run, ok := listeners[l.Name]; ok {
			ls.Addr, ls.Connections = run.addr.String(), int(run.srv.Stats().Active)
		}
		st.Listeners = append(st.Listeners, ls)
	}
	for _, s := range cfg.Sources {
		if s.Type != "mllp" { // an mllp source is one of the listeners
			st.Listeners = append(st.Listeners, admin.ListenerStatus{Name: s.Name, Type: s.Type})
		}
	}
	paused := map[string]bool{}
	for name, p := range b.paused {
		paused[name] = p
	}
	b.mu.Unlock()

	m := b.metrics
	inDLQ := store.DeadLettersByDestination(ctx, b.nats.JetStream)
	totals := b.totals(ctx)
	for i := range st.Listeners {
		ls := &st.Listeners[i]
		ls.Received = uint64(counterValue(m.received.WithLabelValues(ls.Name)))
		ls.Rejected = uint64(counterValue(m.acks.WithLabelValues(ls.Name, "AR")) + counterValue(m.acks.WithLabelValues(ls.Name, "AE")) +
			counterValue(m.acks.WithLabelValues(ls.Name, "CR")) + counterValue(m.acks.WithLabelValues(ls.Name, "CE")))
		ls.Rate = b.rates.rate("l:"+ls.Name, now, float64(ls.Received))
		if totals != nil {
			ls.Received, ls.Rejected = totals.Get("received", ls.Name), totals.Get("refused", ls.Name)
		}
		ls.RateLastHour, ls.RateLastDay = b.rates.lastHour("l:"+ls.Name), b.rates.lastDay("l:"+ls.Name)
	}
	for _, r := range cfg.Routes {
		st.Routes = append(st.Routes, admin.RouteStatus{Name: r.Name, To: r.To, Matches: uint64(counterValue(m.matched.WithLabelValues(r.Name)))})
	}
	for _, d := range cfg.Destinations {
		ds := admin.DestinationStatus{Name: d.Name, Type: d.Type, Paused: paused[d.Name],
			QueueDepth: int64(store.QueueDepth(b.nats.JetStream, d.Name)),
			Delivered:  uint64(counterValue(m.delivered.WithLabelValues(d.Name))),
			Failures:   uint64(counterValue(m.retried.WithLabelValues(d.Name))),
			DeadLetter: uint64(counterValue(m.deadLettered.WithLabelValues(d.Name)))}
		ds.Rate = b.rates.rate("d:"+d.Name, now, float64(ds.Delivered))
		if totals != nil {
			ds.Delivered, ds.Failures, ds.DeadLetter = totals.Get("delivered", d.Name), totals.Get("failed", d.Name), totals.Get("dead_lettered", d.Name)
		}
		ds.RateLastHour, ds.RateLastDay = b.rates.lastHour("d:"+d.Name), b.rates.lastDay("d:"+d.Name)
		ds.QueueLastHour, ds.QueueLastDay = b.rates.levels("q:"+d.Name, false), b.rates.levels("q:"+d.Name, true)
		ds.State, ds.DeadLettersNow = "running", -1
		if inDLQ != nil {
			ds.DeadLettersNow = int64(inDLQ[d.Name])
		}
		if v, ok := b.lastErr.Load(d.Name); ok {
			le := v.(lastError)
			ds.LastError, ds.LastErrAt = le.reason, &le.at
			if ds.QueueDepth != 0 { // else what failed went to the dead-letter queue, and nothing waits
				ds.State, ds.StateReason = "retrying", le.reason
			}
		}
		if why := b.sup.stopped("destination:" + d.Name); why != "" {
			ds.State, ds.StateReason = "stopped", why
		}
		if ds.Paused {
			ds.State, ds.StateReason = "paused", ""
		}
		if at, ok := store.OldestWaiting(ctx, b.nats.JetStream, d.Name); ok {
			ds.OldestUndeliveredSeconds = now.Sub(at).Seconds()
		}
		st.Destinations = append(st.Destinations, ds)
	}
	problem := b.store.Problem()
	st.Storage = admin.StorageStatus{OK: problem == "", Problem: problem, Durability: cfg.NATS.Durability, Streams: map[string]admin.StreamStatus{}}
	for _, name := range []string{wire.StreamIn, wire.StreamOut, wire.StreamDLQ, wire.StreamEvents, wire.StreamAudit} {
		if s, err := b.nats.JetStream.Stream(ctx, name); err == nil {
			ss := s.CachedInfo().State
			st.Storage.Streams[name] = admin.StreamStatus{Messages: ss.Msgs, Bytes: ss.Bytes, FirstSeq: ss.FirstSeq, LastSeq: ss.LastSeq}
			if name == wire.StreamIn && s.CachedInfo().Cluster != nil {
				st.Cluster.Leader = s.CachedInfo().Cluster.Leader
			}
		}
	}
	st.Cluster.Mode, st.Cluster.Replicas = "embedded", cfg.NATS.Replicas
	if cfg.NATS.URL != "" {
		st.Cluster.Mode, st.Cluster.Connected = "external", secret.URL(b.nats.Conn.ConnectedUrlRedacted())
	}
	st.Config = admin.ConfigStatus{File: cfg.File(), LoadedAt: loadedAt, LastReload: reload.result, Problem: reload.err}
	return st
}

// totals are the counts the history index keeps across restarts, or nil
// (history off, or the index did not answer): then status shows this
// process's counters.
func (b *Broker) totals(ctx context.Context) history.Totals {
	if b.index == nil {
		return nil
	}
	t, err := b.index.Totals(ctx)
	if err != nil {
		b.log.Warn().Err(err).Msg("status: the history index's totals could not be read; showing this process's counts")
		return nil
	}
	return t
}
