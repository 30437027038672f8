package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/rs/zerolog"
)

// ContentTypeER7 is HL7 v2's media type for its pipe-and-hat encoding.
const ContentTypeER7 = "x-application/hl7-v2+er7"

// HTTPOptions are the keys of type http.
type HTTPOptions struct {
	Addr         string `mapstructure:"addr"`           // HOST:PORT
	Path         string `mapstructure:"path"`           // default /
	MaxBodyBytes int    `mapstructure:"max_body_bytes"` // a request's body (one message or a batch)
	// MaxRequests bounds the requests handled at once; more are answered
	// 503 with Retry-After before their body is read. With max_body_bytes
	// it bounds the memory requests can hold.
	MaxRequests int                        `mapstructure:"max_requests"`
	TLS         config.ServerTLSFiles      `mapstructure:"tls"`
	Tokens      []config.SourceTokenConfig `mapstructure:"tokens"` // bearer tokens a sender must show
}

// Defaults of an HTTP source.
const (
	DefaultMaxBodyBytes = 16 << 20
	DefaultMaxRequests  = 8
)

// type http: messages POSTed to a path.
func init() {
	RegisterSource(SourceType[HTTPOptions]{
		Name:      "http",
		Documents: true,
		Check: func(o *HTTPOptions, s config.SourceConfig, key string, c *config.Checker) {
			c.Addr(key+".addr", o.Addr)
			if !strings.HasPrefix(o.Path, "/") {
				c.Add(key+".path", "%q must start with /", o.Path)
			}
			if o.MaxBodyBytes < s.MaxMessageBytes {
				c.Add(key+".max_body_bytes", "%d is less than max_message_bytes (%d)", o.MaxBodyBytes, s.MaxMessageBytes)
			}
			if o.MaxRequests < 1 {
				c.Add(key+".max_requests", "must be at least 1")
			}
			c.ServerTLS(key+".tls", o.TLS)
			if len(o.Tokens) == 0 {
				c.Add(key+".tokens", "an http source needs at least one token: senders show it as a bearer token")
			}
			c.Tokens(key+".tokens", o.Tokens)
		},
		Defaults: func(o *HTTPOptions, _ *config.SourceConfig) {
			if o.Path == "" {
				o.Path = "/"
			}
			if o.MaxBodyBytes == 0 {
				o.MaxBodyBytes = DefaultMaxBodyBytes
			}
			if o.MaxRequests == 0 {
				o.MaxRequests = DefaultMaxRequests
			}
		},
		New: func(o *HTTPOptions, s config.SourceConfig, env SourceEnv) (Source, error) {
			var tc *tls.Config
			if o.TLS.CertFile != "" {
				var err error
				if tc, err = mllp.ServerTLSConfig(o.TLS.CertFile, o.TLS.KeyFile, o.TLS.ClientCAFile); err != nil {
					return nil, fmt.Errorf("source %s: %w", s.Name, err)
				}
			}
			tokens := map[string]string{}
			for _, t := range o.Tokens {
				tok, err := env.Token(t)
				if err != nil {
					return nil, fmt.Errorf("source %s: token %s: %w", s.Name, t.Name, err)
				}
				tokens[t.Name] = tok
			}
			return &HTTPSource{Config: s, Ingest: env.Ingest, Tokens: tokens, TLSConfig: tc, Log: env.Log, Sync: env.Sync, Builder: env.Builder}, nil
		},
	})
}

// HTTPSource takes messages POSTed to one path: one message or several (a
// batch, or messages back to back) per request, each stored through
// Ingest as an MLLP listener's would be. The response carries the ACK of
// each message, one after another, and a status a client can act on
// without reading HL7: 200 when every message was accepted (AA, CA), 503
// when any must be resent (AE, CE: the store could not take it; messages
// of the request already stored are recognised on the resend), else 400
// (AR, CR: refused; resending will not help). A sender shows a bearer
// token; without a known one it gets 401.
type HTTPSource struct {
	Config config.SourceConfig
	Ingest *Ingest
	// Tokens are the bearer tokens accepted, by name (from the config).
	Tokens    map[string]string
	TLSConfig *tls.Config
	Log       zerolog.Logger
	// Sync, if set, makes what was stored durable. Ingest may then store
	// without waiting for the disk (store.NATS.BatchCommitter): the
	// messages of a request share one flush, and are acknowledged after it.
	Sync func(ctx context.Context) error
	// Builder, for format json or xml, makes each document's message; the
	// response is then JSON (see serveDocuments).
	Builder *Builder

	opts     *HTTPOptions        // Config's own keys
	hashes   map[[32]byte]string // token hash -> name
	inFlight chan struct{}       // a slot per request being handled (Config.MaxRequests)
}

// Run serves until ctx ends, then lets requests in flight finish (up to
// 10 s).
func (s *HTTPSource) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", config.SourceOptionsOf[HTTPOptions](s.Config).Addr)
	if err != nil {
		return fmt.Errorf("source %s: %w", s.Config.Name, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		TLSConfig: s.TLSConfig}
	errc := make(chan error, 1)
	go func() {
		if s.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.Log.Info().Str("source", s.Config.Name).Str("addr", ln.Addr().String()).Bool("tls", s.TLSConfig != nil).Msg("accepting HL7 over HTTP")
	select {
	case err := <-errc:
		return fmt.Errorf("source %s: %w", s.Config.Name, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// Handler is the source's HTTP handler.
func (s *HTTPSource) Handler() http.Handler {
	s.opts = config.SourceOptionsOf[HTTPOptions](s.Config)
	s.hashes = map[[32]byte]string{}
	for name, tok := range s.Tokens {
		s.hashes[sha256.Sum256([]byte(tok))] = name
	}
	s.inFlight = make(chan struct{}, max(s.opts.MaxRequests, 1))
	return http.HandlerFunc(s.serveHTTP)
}

func (s *HTTPSource) serveHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.Log.With().Str("source", s.Config.Name).Str("remote", r.RemoteAddr).Logger()
	defer func() {
		if p := recover(); p != nil {
			// The panic's type and the stack, never its value: it may
			// quote the message.
			log.Error().Str("panic", fmt.Sprintf("%T", p)).Bytes("stack", debug.Stack()).Msg("request failed: panic recovered")
			httpError(w, http.StatusInternalServerError, "internal error; resend the message")
		}
	}()
	if r.URL.Path != s.opts.Path {
		httpError(w, http.StatusNotFound, "HL7 messages are POSTed to "+s.opts.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hl7broker"`)
		log.Warn().Msg("request refused: no valid bearer token")
		httpError(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	want := map[bool][]string{true: {ContentTypeER7, "text/plain"}, false: {"application/" + s.Config.Format, "text/" + s.Config.Format}}[s.Builder == nil]
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || !slices.Contains(want, mt) {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be "+strings.Join(want, " or "))
		return
	}
	// Requests at once are bounded, so bodies held at once are too: one
	// more is told to come back, before its body is read.
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		log.Warn().Int("max_requests", cap(s.inFlight)).Msg("request refused: as many requests as max_requests are being handled")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("this source handles %d requests at once; resend shortly", cap(s.inFlight)))
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxBodyBytes)), r.ContentLength, s.opts.MaxBodyBytes)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		log.Warn().Int64("limit", tooLarge.Limit).Msg("request refused: body too large")
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds this source's limit of %d bytes", tooLarge.Limit))
		return
	} else if err != nil {
		httpError(w, http.StatusBadRequest, "the body could not be read")
		return
	}
	if s.Builder != nil {
		s.serveDocuments(w, r, body, log)
		return
	}
	batch, err := hl7.SplitBatch(body, hl7.Limits{MaxMessageBytes: s.opts.MaxBodyBytes})
	if err != nil || len(batch.Messages) == 0 {
		reason := "no HL7 message in the body"
		if err != nil {
			reason = "the body is not HL7 messages: " + splitReason(err)
		}
		log.Warn().Int("size", len(body)).Str("reason", reason).Msg("request refused")
		httpError(w, http.StatusBadRequest, reason)
		return
	}
	status := http.StatusOK
	var acks []byte
	var outs []Outcome
	if s.Sync != nil {
		outs = s.Ingest.ReceiveAll(r.Context(), batch.Messages, Origin{RemoteAddr: r.RemoteAddr}, s.Sync)
	} else {
		for _, raw := range batch.Messages {
			outs = append(outs, s.Ingest.Receive(r.Context(), raw, Origin{RemoteAddr: r.RemoteAddr}))
		}
	}
	for _, out := range outs {
		acks = append(acks, out.Ack...)
		switch out.Code {
		case "AE", "CE":
			status = http.StatusServiceUnavailable
		case "AA", "CA":
		default:
			if status == http.StatusOK {
				status = http.StatusBadRequest
			}
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", ContentTypeER7)
	w.WriteHeader(status)
	_, _ = w.Write(acks)
}

// DocumentResult is what became of one document of a request to a source
// of format json or xml: its place in the request, and the ACK of the
// message its script built (code, control ID, and the reason of a
// refusal), or why no message was built. Never a value of the document.
type DocumentResult struct {
	Index     int    `json:"index"`
	Ack       string `json:"ack,omitempty"`
	ControlID string `json:"control_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

// serveDocuments builds each document's message, receives those built,
// and answers JSON: {"results": [...]} in the request's order, with the
// status an HL7 request would get (200 all stored, 503 resend, 400 some
// refused or not built).
func (s *HTTPSource) serveDocuments(w http.ResponseWriter, r *http.Request, body []byte, log zerolog.Logger) {
	docs, err := s.Builder.Build(body)
	if err != nil {
		log.Warn().Int("size", len(body)).Str("reason", err.Error()).Msg("request refused")
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	results := make([]DocumentResult, len(docs))
	var raws [][]byte
	var at []int
	for i, d := range docs {
		results[i].Index = i
		if d.Err != nil {
			results[i].Error = d.Err.Error()
			log.Warn().Int("document", i).Str("reason", d.Err.Error()).Msg("document refused: its script made no message")
			continue
		}
		raws, at = append(raws, d.Raw), append(at, i)
	}
	var outs []Outcome
	if s.Sync != nil {
		outs = s.Ingest.ReceiveAll(r.Context(), raws, Origin{RemoteAddr: r.RemoteAddr}, s.Sync)
	} else {
		for _, raw := range raws {
			outs = append(outs, s.Ingest.Receive(r.Context(), raw, Origin{RemoteAddr: r.RemoteAddr}))
		}
	}
	status := http.StatusOK
	for j, out := range outs {
		res := &results[at[j]]
		res.Ack, res.ControlID = out.Code, out.ControlID
		if out.Err != nil {
			res.Error = out.Err.Reason
		}
	}
	for _, res := range results {
		switch {
		case res.Ack == "AE" || res.Ack == "CE":
			status = http.StatusServiceUnavailable
		case res.Ack != "AA" && res.Ack != "CA" && status == http.StatusOK:
			status = http.StatusBadRequest
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"results": results})
}

// readBody reads a request's body into one buffer sized by its
// Content-Length (when given, and within limit): no doubling copies and
// their garbage, as io.ReadAll makes of a 15 MB body.
func readBody(r io.Reader, length int64, limit int) ([]byte, error) {
	if length <= 0 || length > int64(limit) {
		return io.ReadAll(r)
	}
	buf := make([]byte, length, length+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("the body ended before its Content-Length: %w", err)
		}
		return nil, err
	}
	return buf, nil
}

// authorized checks a bearer token in constant time against each known one.
func (s *HTTPSource) authorized(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := 0
	for known := range s.hashes {
		found |= subtle.ConstantTimeCompare(h[:], known[:])
	}
	return found == 1
}

// httpError answers a request that carried no message that could be
// acknowledged, with the reason as text.
func httpError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reason+"\n")
}
