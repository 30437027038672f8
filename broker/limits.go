package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/rs/zerolog"
)

// fdReserve is how many file descriptors are kept from senders' connections
// for the store, the admin server, sources and destinations: a tenth of
// the limit, at least 256 and at most 4,096. Without it, enough idle
// connections leave no descriptor for /readyz, a file source or a flush.
func fdReserve(limit uint64) uint64 { return min(max(limit/10, 256), 4096) }

// newBudget is what every listener shares: the frames being received
// (limits.frames_memory, but at least four messages of the largest
// max_message_bytes), and the connections (the file-descriptor limit,
// raised to its hard limit, less fdReserve).
func newBudget(cfg *config.Config, log zerolog.Logger) *mllp.Budget {
	b := &mllp.Budget{FrameBytes: cfg.Limits.FramesMemory}
	for _, l := range cfg.Listeners {
		b.FrameBytes = max(b.FrameBytes, 4*int64(l.MaxMessageBytes))
	}
	limit, err := raiseFileLimit()
	switch {
	case err != nil:
		log.Warn().Str("reason", err.Error()).Msg("the file-descriptor limit cannot be read; connections are bound by each listener's max_connections only")
	case limit <= fdReserve(limit):
		log.Warn().Uint64("fd_limit", limit).Msg("the file-descriptor limit is too low to keep a reserve; raise it (ulimit -n)")
	default:
		b.Conns = int64(limit - fdReserve(limit))
	}
	log.Info().Int64("frames_memory", b.FrameBytes).Int64("max_connections_all_listeners", b.Conns).Uint64("fd_limit", limit).
		Msg("limits for senders")
	return b
}

// watchBudget exports what the listeners' budget holds now.
func (m *metrics) watchBudget(b *mllp.Budget) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hl7broker", Name: "frames_memory_bytes",
			Help: "Bytes of MLLP frames being received, all connections together (bounded by limits.frames_memory)."},
			func() float64 { return float64(b.FrameBytesUsed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hl7broker", Name: "mllp_connections",
			Help: "MLLP connections open, all listeners together (bounded by the file-descriptor limit less a reserve)."},
			func() float64 { return float64(b.ConnsOpen()) }))
}
