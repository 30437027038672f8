// Package admin is the admin HTTP server: /metrics (Prometheus), /healthz
// (the process is alive) and /readyz (the broker can take and deliver
// messages, each check saying why not), open; /api/v1 (messages, refused
// messages, dead letters, destinations, audit), behind bearer tokens with
// roles, every content view, key search and change audited (no audit
// entry, no content); and the web console at /ui/, a static client of it.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Readiness is /readyz's answer: ready, and each check's "ok" or why not.
// The JSON is a contract (docs/operations.md).
type Readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// Server serves the admin endpoints. Set the fields, then Start.
type Server struct {
	Metrics *prometheus.Registry
	// Ready computes /readyz's answer; ctx ends when the request does.
	Ready func(ctx context.Context) Readiness
	Log   zerolog.Logger
	// API, if set, is served under /api/v1.
	API *API
	// CertFile and KeyFile, if set, make the server HTTPS.
	CertFile, KeyFile string

	srv  *http.Server
	addr net.Addr
}

// Start listens on addr and serves in the background.
func (s *Server) Start(addr string) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.API != nil {
		s.API.routes(mux)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.addr = ln.Addr()
	go func() {
		var err error
		if s.CertFile != "" {
			err = s.srv.ServeTLS(ln, s.CertFile, s.KeyFile)
		} else {
			err = s.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error().Err(err).Msg("admin server stopped")
		}
	}()
	s.Log.Info().Str("addr", ln.Addr().String()).Msg("admin server listening")
	return nil
}

// Addr is the bound address (nil before Start).
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops the server, letting requests in flight finish.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if s.API != nil {
		s.API.FlushRefusals()
	}
	return err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	res := s.Ready(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !res.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}
