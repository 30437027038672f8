package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Health says whether storing works, for /readyz and
// hl7broker_store_ok: ingest reports each commit, and the embedded
// server's JetStream being shut down (it does that itself when the disk
// is full) counts as failing until it is back.
type Health struct {
	mu           sync.Mutex
	failingSince time.Time // zero: the last commit succeeded
	lastErr      string
	down         string // the embedded JetStream is off: why
}

// committed records one commit's outcome.
func (h *Health) Committed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.failingSince, h.lastErr = time.Time{}, ""
		return
	}
	if h.failingSince.IsZero() {
		h.failingSince = time.Now()
	}
	h.lastErr = err.Error()
}

func (h *Health) setDown(why string) {
	h.mu.Lock()
	h.down = why
	h.mu.Unlock()
}

// failingFor is how long commits have failed (0 while they succeed).
func (h *Health) failingFor() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() {
		return 0
	}
	return time.Since(h.failingSince)
}

// problem is why storing fails now, or "".
func (h *Health) Problem() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.down != "" && !h.failingSince.IsZero():
		return h.down + " (" + h.lastErr + ")"
	case h.down != "":
		return h.down
	case !h.failingSince.IsZero():
		return fmt.Sprintf("storing has failed since %s: %s", h.failingSince.UTC().Format(time.RFC3339), h.lastErr)
	}
	return ""
}

func (h *Health) Register(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hl7broker", Name: "store_ok",
		Help: "1 while messages can be stored, 0 while storing fails (senders get AE/CE; /readyz says why)."},
		func() float64 {
			if h.Problem() != "" {
				return 0
			}
			return 1
		}))
}

// minFreeToRestart is the free space the store's disk needs before the
// embedded JetStream is started again after running out.
const minFreeToRestart = 8 << 20

// Keeper watches the embedded server and brings storing back by
// itself after the disk was full, once there is space again:
//
//   - nats-server latches a failed write (ENOSPC) on the stream's file
//     store and, for a stream of one replica, answers no publish to it
//     from then on: every store times out until the process restarts.
//     When storing has failed for stuckAfter and the disk has room again,
//     the keeper restarts the embedded JetStream in process: the streams
//     and consumers are loaded again from disk, without the latched error;
//   - JetStream may also shut itself down (out of space in its metadata):
//     the keeper starts it again once there is room.
//
// Either way the streams' config is applied again; the router and the
// delivery workers, whose subscriptions end, are restarted by their
// supervisor. Nothing acknowledged is lost: nothing was acknowledged that
// was not stored.
type Keeper struct {
	n      *NATS
	cfg    *config.Config
	health *Health
	log    zerolog.Logger

	restartedAt time.Time
}

// NewKeeper watches n's embedded server (n.Server() not nil) and reports
// to health.
func NewKeeper(n *NATS, cfg *config.Config, health *Health, log zerolog.Logger) *Keeper {
	return &Keeper{n: n, cfg: cfg, health: health, log: log}
}

const (
	// stuckAfter: storing failing this long with room on the disk means a
	// latched write error, not a slow disk.
	stuckAfter = 5 * time.Second
	// restartEvery: at most one JetStream restart in this time.
	restartEvery = 15 * time.Second
)

func (k *Keeper) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			k.check(ctx)
		}
	}
}

func (k *Keeper) check(ctx context.Context) {
	ns := k.n.server
	free, ferr := freeBytes(k.n.storeDir)
	room := ferr == nil && free >= minFreeToRestart
	enabled := ns.JetStreamEnabled()
	since := k.health.failingFor()
	full := fmt.Sprintf("the disk of data_dir is full (%d bytes free): storing fails until there is room (%d bytes), then resumes by itself", free, minFreeToRestart)
	switch {
	case enabled && since == 0:
		k.health.setDown("")
		return
	case !room:
		k.health.setDown(full)
		return
	case enabled && since < stuckAfter: // failing, with room: maybe a slow disk
		k.health.setDown("")
		return
	case time.Since(k.restartedAt) < restartEvery:
		return
	}
	k.restartedAt = time.Now()
	if enabled {
		k.log.Warn().Str("component", "store").Dur("failing_for", since).Uint64("free_bytes", free).
			Msg("storing has failed since the disk was full; restarting the embedded JetStream to clear the failed write")
		if err := ns.ShutdownJetStream(); err != nil {
			k.log.Error().Str("component", "store").Str("reason", err.Error()).Msg("stopping the embedded JetStream failed")
		}
	}
	if err := ns.EnableJetStream(&server.JetStreamConfig{StoreDir: k.n.storeDir}); err != nil {
		k.health.setDown("the embedded JetStream stopped; starting it again failed: " + err.Error())
		k.log.Error().Str("component", "store").Str("reason", err.Error()).Msg("starting the embedded JetStream again failed; will retry")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k.n.EnsureStreams(sctx, k.cfg); err != nil {
		k.log.Error().Str("component", "store").Str("reason", err.Error()).Msg("JetStream started again, but the streams could not be set up; will retry")
		return
	}
	k.health.setDown("")
	k.health.Committed(nil) // a fresh start: the next commit says how it goes
	k.log.Warn().Str("component", "store").Uint64("free_bytes", free).Msg("the embedded JetStream is running again")
}
