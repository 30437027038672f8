package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startAdmin serves /metrics (Prometheus), /healthz (the process is
// alive) and /readyz (NATS connected, streams present, listeners bound,
// every supervised part running).
func (b *Broker) startAdmin(addr string) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", b.readyz)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	b.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.adminAddr = ln.Addr()
	go func() {
		if err := b.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			b.log.Error().Err(err).Msg("admin server stopped")
		}
	}()
	b.log.Info().Str("addr", ln.Addr().String()).Msg("admin server listening")
	return nil
}

// readiness is /readyz's answer.
type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func (b *Broker) readyz(w http.ResponseWriter, r *http.Request) {
	res := readiness{Ready: true, Checks: map[string]string{"nats": "ok", "streams": "ok", "listeners": "ok", "config": "ok", "components": "ok", "storage": "ok"}}
	fail := func(check, why string) { res.Ready, res.Checks[check] = false, why }
	if s := b.nats.Conn.Status(); s != nats.CONNECTED {
		fail("nats", "not connected: "+s.String())
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, name := range []string{wire.StreamIn, wire.StreamOut, wire.StreamDLQ} {
			if _, err := b.nats.JetStream.Stream(ctx, name); err != nil {
				fail("streams", name+": "+err.Error())
			}
		}
	}
	b.mu.Lock()
	bound, want, reload := len(b.listeners), len(b.cfg.Listeners), b.lastReload
	b.mu.Unlock()
	if b.stopping.Load() {
		fail("listeners", "shutting down")
	} else if bound != want {
		fail("listeners", fmt.Sprintf("%d of %d bound", bound, want))
	}
	if why := b.store.Problem(); why != "" {
		fail("storage", why)
	}
	if bad := b.sup.unhealthy(); len(bad) > 0 {
		fail("components", strings.Join(bad, "; "))
	}
	// A reload that failed leaves the previous config running: still
	// ready, and the detail says what is wrong with the file.
	if reload.err != "" {
		res.Checks["config"] = reload.err
	}
	w.Header().Set("Content-Type", "application/json")
	if !res.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}

// AdminAddr is the admin server's bound address (nil when off).
func (b *Broker) AdminAddr() net.Addr { return b.adminAddr }
