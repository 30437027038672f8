package broker

import (
	"context"
	"github.com/hl7broker/hl7broker/internal/buildinfo"
	"time"

	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/store"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus series, all prefixed hl7broker_.
// Labels are listener and destination names, ACK codes and outcomes:
// never message content.
type metrics struct {
	reg          *prometheus.Registry
	received     *prometheus.CounterVec   // listener
	acks         *prometheus.CounterVec   // listener, code
	storeSeconds *prometheus.HistogramVec // listener
	routed       *prometheus.CounterVec   // destination
	matched      *prometheus.CounterVec   // route
	unrouted     prometheus.Counter
	delivered    *prometheus.CounterVec   // destination
	retried      *prometheus.CounterVec   // destination
	deadLettered *prometheus.CounterVec   // destination
	attemptSecs  *prometheus.HistogramVec // destination
	reloads      *prometheus.CounterVec   // result: applied | partly_applied | invalid
	reusedIDs    *prometheus.CounterVec   // listener
	problems     *prometheus.CounterVec   // listener, code
	restarts     *prometheus.CounterVec   // component
	files        *ingest.FileMetrics      // source (file sources)
	lastMessage  *prometheus.GaugeVec     // source: Unix time of its last message
	lastSuccess  *prometheus.GaugeVec     // destination: Unix time of its last delivery
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hl7broker", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hl7broker", Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, labels)
		m.reg.MustRegister(h)
		return h
	}
	m.received = counter("received_total", "Messages received by a listener (frames handed to ingest).", "listener")
	m.acks = counter("acks_total", "Acknowledgements sent, by MSA-1 code.", "listener", "code")
	m.storeSeconds = histogram("store_seconds", "Time from receipt to the store's acknowledgement.", "listener")
	m.routed = counter("routed_total", "Copies queued for a destination by the router.", "destination")
	m.matched = counter("route_matches_total", "Messages a route matched.", "route")
	m.unrouted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hl7broker", Name: "unrouted_total", Help: "Messages no route matched."})
	m.reg.MustRegister(m.unrouted)
	m.delivered = counter("delivered_total", "Messages a destination accepted.", "destination")
	m.retried = counter("retried_total", "Delivery attempts that failed and will be retried.", "destination")
	m.deadLettered = counter("dead_lettered_total", "Messages moved to the dead-letter queue.", "destination")
	m.attemptSecs = histogram("delivery_seconds", "Time of one delivery attempt.", "destination")
	m.reloads = counter("config_reloads_total", "Config reloads: applied, partly_applied (a listener could not bind) or invalid (the running config stayed).", "result")
	m.reusedIDs = counter("control_ids_reused_total", "Messages stored whose listener, MSH-3, MSH-4 and MSH-10 equal those of a different message stored within the duplicate window.", "listener")
	m.problems = counter("validation_problems_total", "Problems validation found in messages received (HL7 table 0357 code: 100 segment sequence, 101 required field missing, 102 data type, 103 table value), whether the message was stored (validation: record) or refused (reject).", "listener", "code")
	m.restarts = counter("component_restarts_total", "Times a supervised part (router, janitor, destination:NAME, listener:NAME) stopped or panicked and was restarted.", "component")
	m.files = &ingest.FileMetrics{
		Files:           counter("source_files_total", "Files a file source finished: done (every message stored) or error (moved to error_dir with a report).", "source", "outcome"),
		Bytes:           counter("source_bytes_total", "Bytes of the files a file source finished.", "source"),
		CharsetWarnings: counter("source_charset_warnings_total", "Messages from a source whose bytes contradict their character set (stored as they are).", "source"),
		Stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "hl7broker", Name: "source_stuck_files",
			Help: "Files a file source read and stored but could not move on (done_dir or error_dir not writable); tried again with a backoff."}, []string{"source"}),
	}
	m.reg.MustRegister(m.files.Stuck)
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "hl7broker", Name: name, Help: help}, labels)
		m.reg.MustRegister(g)
		return g
	}
	m.lastMessage = gauge("source_last_message_timestamp_seconds", "When a listener or source last received a message (Unix time; absent until its first since the start).", "source")
	m.lastSuccess = gauge("destination_last_success_timestamp_seconds", "When a destination last accepted a message (Unix time; absent until its first since the start).", "destination")
	bi := buildinfo.Read()
	build := gauge("build_info", "Always 1: which hl7broker this is (version, commit, Go).", "version", "commit", "goversion")
	build.WithLabelValues(bi.Version, bi.Commit, bi.Go).Set(1)
	m.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// ingest is the series an ingest counts into.
func (m *metrics) ingest() *ingest.Metrics {
	return &ingest.Metrics{Received: m.received, Acks: m.acks, StoreSeconds: m.storeSeconds, ReusedIDs: m.reusedIDs, LastMessage: m.lastMessage,
		Problems: m.problems}
}

// watch registers what is read at scrape time: open connections per
// listener and queued messages per destination, over whichever listeners
// and destinations run now (a reload changes them), and the store's flushes.
func (m *metrics) watch(b *Broker, syncer *store.Syncer) {
	m.reg.MustRegister(liveCollector{b})
	if syncer != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "hl7broker", Name: "store_flushes_total",
			Help: "Disk flushes of the store (durability fsync): one covers every message stored before it."},
			func() float64 { n, _ := syncer.Flushes(); return float64(n) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "hl7broker", Name: "store_flush_seconds_total",
			Help: "Time spent flushing the store to disk."},
			func() float64 { _, busy := syncer.Flushes(); return busy.Seconds() }))
	}
}

var (
	connectionsDesc = prometheus.NewDesc("hl7broker_connections_open", "Open MLLP connections.", []string{"listener"}, nil)
	queueDepthDesc  = prometheus.NewDesc("hl7broker_queue_depth", "Messages waiting for a destination (HL7_OUT).", []string{"destination"}, nil)
	pausedDesc      = prometheus.NewDesc("hl7broker_destination_paused", "1 while a destination is paused (it queues and delivers nothing).", []string{"destination"}, nil)
	eventsDropDesc  = prometheus.NewDesc("hl7broker_journey_events_dropped_total", "Journey events lost: the event queue was full or the store failed.", nil, nil)
	oldestAgeDesc   = prometheus.NewDesc("hl7broker_destination_oldest_age_seconds", "Age of the oldest message waiting for a destination; 0 when none waits.", []string{"destination"}, nil)
	certDesc        = prometheus.NewDesc("hl7broker_certificate_expiry_timestamp_seconds", "When a TLS certificate the config names expires (Unix time): kind is listener, destination or admin.", []string{"kind", "name"}, nil)
	diskFreeDesc    = prometheus.NewDesc("hl7broker_store_disk_free_bytes", "Bytes free on the embedded store's file system (absent with an external NATS).", nil, nil)
	diskSizeDesc    = prometheus.NewDesc("hl7broker_store_disk_size_bytes", "Size of the embedded store's file system (absent with an external NATS).", nil, nil)
	alertFiringDesc = prometheus.NewDesc("hl7broker_alert_firing", "Alerts of a rule firing now (one per target).", []string{"rule"}, nil)
)

// liveCollector reports the listeners and destinations running at scrape time.
type liveCollector struct{ b *Broker }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- queueDepthDesc
	ch <- pausedDesc
	ch <- eventsDropDesc
	ch <- oldestAgeDesc
	ch <- alertFiringDesc
	ch <- certDesc
	ch <- diskFreeDesc
	ch <- diskSizeDesc
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	conns := map[string]float64{}
	for name, run := range valuesOf[*listenerRun](c.b.host, "listener") {
		conns[name] = float64(run.srv.Stats().Active)
	}
	var dests []string
	paused := map[string]float64{}
	for name, run := range valuesOf[*workerRun](c.b.host, "destination") {
		dests = append(dests, name)
		if run.paused {
			paused[name] = 1
		}
	}
	for _, d := range dests {
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, paused[d], d)
	}
	ch <- prometheus.MustNewConstMetric(eventsDropDesc, prometheus.CounterValue, float64(c.b.events.Dropped()))
	for name, n := range conns {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, n, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	for _, d := range dests {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, store.QueueDepth(c.b.nats.JetStream, d), d)
		var age float64
		if at, ok := store.OldestWaiting(ctx, c.b.nats.JetStream, d); ok {
			age = max(0, now.Sub(at).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(oldestAgeDesc, prometheus.GaugeValue, age, d)
	}
	if free, size := c.b.nats.DiskSpace(); size > 0 {
		ch <- prometheus.MustNewConstMetric(diskFreeDesc, prometheus.GaugeValue, float64(free))
		ch <- prometheus.MustNewConstMetric(diskSizeDesc, prometheus.GaugeValue, float64(size))
	}
	c.b.mu.Lock()
	cfg := c.b.cfg
	c.b.mu.Unlock()
	for _, cert := range certificates(cfg) {
		ch <- prometheus.MustNewConstMetric(certDesc, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), cert.Kind, cert.Name)
	}
	if c.b.alerts != nil {
		for rule, n := range c.b.alerts.Firing() {
			ch <- prometheus.MustNewConstMetric(alertFiringDesc, prometheus.GaugeValue, float64(n), rule)
		}
	}
}
