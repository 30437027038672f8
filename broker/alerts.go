package broker

// Alerting: the engine's facts, gathered from the metrics, the store and
// the config in force; the rules and notifiers put in force at start and
// on reload.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/alerts"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/store"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newAlerts is the alert engine, with cfg's rules in force.
func (b *Broker) newAlerts(cfg *config.Config, started time.Time) (*alerts.Engine, error) {
	host, _ := os.Hostname()
	e := &alerts.Engine{ID: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), started.UnixNano()), Interval: cfg.Alerts.Interval,
		Store: alerts.KV{JetStream: b.nats.JetStream}, Log: b.log, Link: cfg.Alerts.ConsoleURL,
		Facts: func(ctx context.Context) alerts.Facts { return b.facts(ctx, started) }}
	return e, b.setAlertRules(e, cfg)
}

// setAlertRules puts cfg's rules and notifiers in force.
func (b *Broker) setAlertRules(e *alerts.Engine, cfg *config.Config) error {
	notifiers, err := alerts.Notifiers(cfg)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	e.SetRules(alerts.RulesOf(cfg.Alerts), notifiers)
	return nil
}

// facts are the broker as the rules see it now.
func (b *Broker) facts(ctx context.Context, started time.Time) alerts.Facts {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b.mu.Lock()
	cfg := b.cfg
	paused := map[string]bool{}
	for name, p := range b.paused {
		paused[name] = p
	}
	b.mu.Unlock()
	m := b.metrics
	f := alerts.Facts{Now: time.Now(), Started: started, Sources: map[string]alerts.SourceFacts{}, Destinations: map[string]alerts.DestinationFacts{},
		StorageProblem: b.store.Problem(), UnroutedAge: store.OldestUnrouted(ctx, b.nats.JetStream)}
	last := gaugeTimes(m.lastMessage)
	for _, name := range cfg.Origins() {
		var naks float64
		for _, code := range []string{"AE", "AR", "CE", "CR"} {
			naks += counterValue(m.acks.WithLabelValues(name, code))
		}
		f.Sources[name] = alerts.SourceFacts{LastMessage: last[name], Negative: naks}
	}
	delivered := gaugeTimes(m.lastSuccess)
	for _, d := range cfg.Destinations {
		df := alerts.DestinationFacts{Paused: paused[d.Name], LastSuccess: delivered[d.Name],
			QueueDepth: int64(store.QueueDepth(b.nats.JetStream, d.Name)), DeadLetters: counterValue(m.deadLettered.WithLabelValues(d.Name))}
		if v, ok := b.lastErr.Load(d.Name); ok {
			df.LastFailure = v.(lastError).at
		}
		if at, ok := store.OldestWaiting(ctx, b.nats.JetStream, d.Name); ok {
			df.OldestAge = max(0, f.Now.Sub(at))
		}
		f.Destinations[d.Name] = df
	}
	f.DiskFree, f.DiskTotal = b.nats.DiskSpace()
	f.Certificates = certificates(cfg)
	return f
}

// gaugeTimes are a gauge vector's values, Unix times, by its one label.
func gaugeTimes(g *prometheus.GaugeVec) map[string]time.Time {
	out := map[string]time.Time{}
	ch := make(chan prometheus.Metric, 64)
	go func() { g.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil || d.Gauge == nil || len(d.Label) != 1 {
			continue
		}
		sec := d.Gauge.GetValue()
		out[d.Label[0].GetValue()] = time.Unix(0, int64(sec*1e9))
	}
	return out
}

// certificates are the TLS certificates the config names: listeners',
// destinations' (client certificates), and the admin server's. A file
// that cannot be read is left out (the listener's own start says why).
func certificates(cfg *config.Config) []alerts.Certificate {
	var out []alerts.Certificate
	add := func(kind, name, file string) {
		if file == "" {
			return
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return
		}
		if block, _ := pem.Decode(raw); block != nil {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				out = append(out, alerts.Certificate{Kind: kind, Name: name, NotAfter: c.NotAfter})
			}
		}
	}
	for _, l := range cfg.Listeners {
		add("listener", l.Name, l.TLS.CertFile)
	}
	for _, d := range cfg.Destinations {
		add("destination", d.Name, d.TLS.CertFile)
	}
	add("admin", "admin", cfg.Admin.TLS.CertFile)
	return out
}

// alertsAPI is the admin API's view of alerting.
type alertsAPI struct{ b *Broker }

func (v alertsAPI) Alerts(ctx context.Context) ([]alerts.Alert, error) {
	silences, err := (alerts.KV{JetStream: v.b.nats.JetStream}).Silences(ctx)
	if err != nil {
		return nil, err
	}
	out := v.b.alerts.Alerts()
	now := time.Now()
	for i := range out { // a silence set a moment ago shows before the next evaluation
		if s, ok := silences[out[i].Rule]; ok && s.Until.After(now) {
			out[i].Silenced = &s
		} else {
			out[i].Silenced = nil
		}
	}
	return out, nil
}

func (v alertsAPI) Rules(ctx context.Context) ([]admin.AlertRule, error) {
	silences, err := (alerts.KV{JetStream: v.b.nats.JetStream}).Silences(ctx)
	if err != nil {
		return nil, err
	}
	v.b.mu.Lock()
	rules := v.b.cfg.Alerts.Rules
	v.b.mu.Unlock()
	out := []admin.AlertRule{}
	now := time.Now()
	for _, r := range rules {
		ar := admin.AlertRule{Name: r.Name, Kind: r.Kind, Target: r.Target, Severity: r.Severity}
		if s, ok := silences[r.Name]; ok && s.Until.After(now) {
			ar.Silenced = &s
		}
		out = append(out, ar)
	}
	return out, nil
}

func (v alertsAPI) Silence(ctx context.Context, rule string, s *alerts.Silence) error {
	v.b.mu.Lock()
	known := slices.ContainsFunc(v.b.cfg.Alerts.Rules, func(r config.AlertRuleConfig) bool { return r.Name == rule })
	v.b.mu.Unlock()
	if !known {
		return fmt.Errorf("alert rule %q: %w", rule, history.ErrNotFound)
	}
	return (alerts.KV{JetStream: v.b.nats.JetStream}).SetSilence(ctx, rule, s)
}
