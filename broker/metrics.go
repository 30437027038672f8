package broker

import (
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
	restarts     *prometheus.CounterVec   // component
	files        *ingest.FileMetrics      // source (file sources)
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
	m.restarts = counter("component_restarts_total", "Times a supervised part (router, janitor, destination:NAME, listener:NAME) stopped or panicked and was restarted.", "component")
	m.files = &ingest.FileMetrics{
		Files:           counter("source_files_total", "Files a file source finished: done (every message stored) or error (moved to error_dir with a report).", "source", "outcome"),
		Bytes:           counter("source_bytes_total", "Bytes of the files a file source finished.", "source"),
		CharsetWarnings: counter("source_charset_warnings_total", "Messages from a source whose bytes contradict their character set (stored as they are).", "source"),
		Stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "hl7broker", Name: "source_stuck_files",
			Help: "Files a file source read and stored but could not move on (done_dir or error_dir not writable); tried again with a backoff."}, []string{"source"}),
	}
	m.reg.MustRegister(m.files.Stuck)
	m.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// ingest is the series an ingest counts into.
func (m *metrics) ingest() *ingest.Metrics {
	return &ingest.Metrics{Received: m.received, Acks: m.acks, StoreSeconds: m.storeSeconds, ReusedIDs: m.reusedIDs}
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
)

// liveCollector reports the listeners and destinations running at scrape time.
type liveCollector struct{ b *Broker }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- queueDepthDesc
	ch <- pausedDesc
	ch <- eventsDropDesc
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
	for _, d := range dests {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, store.QueueDepth(c.b.nats.JetStream, d), d)
	}
}
