// Package feed feeds a running broker from files, as a migration does:
// each file's valid messages (as an ingest.Surveyor finds them) in order,
// over MLLP to a listener or in batches to an HTTP source, each ACK
// checked, resumable from where an interrupted run stopped.
package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/mllp"
)

// Options say where and how to feed a broker.
type Options struct {
	// To is a broker's MLLP listener (HOST:PORT) or HTTP source (an
	// http:// or https:// URL).
	To        string
	TLS       *tls.Config   // nil: plain TCP or HTTP
	Token     string        // the HTTP source's bearer token (required for a URL)
	TokenFile string        // or a file holding it
	Batch     int           // messages per HTTP request (at least 1)
	Rate      float64       // messages a second at most; 0: as fast as ACKs come back
	Timeout   time.Duration // for each ACK, and for retrying a 503
	StatePath string        // where progress is kept, to resume
}

// Sender feeds a broker the valid messages of files, in order, checking
// each ACK, and keeps how far each file got (by its digest) in
// Options.StatePath, so that a run started again resumes where the last
// stopped (the broker recognises the few messages sent twice).
type Sender struct {
	// Sent, Skipped (sent by an earlier run) and Refused (a negative or
	// missing ACK) count the messages so far.
	Sent, Skipped, Refused int
	// Acked, if set, hears each message's ACK code ("" when none came),
	// by its file and index there.
	Acked func(file string, index int, code string)

	to       transport
	o        Options
	state    map[string]int // file digest -> messages done
	saved    time.Time
	interval time.Duration
	last     time.Time
}

// transport sends messages to a broker and returns each one's ACK
// code (MSA-1; "" when none came back for it). An error ends the import
// (it resumes from --state).
type transport interface {
	send(ctx context.Context, msgs [][]byte) ([]string, error)
	batch() int // messages per send
	close()
}

// IsHTTP says whether to names an HTTP source (a URL) rather than an MLLP
// listener.
func IsHTTP(to string) bool {
	return strings.HasPrefix(to, "http://") || strings.HasPrefix(to, "https://")
}

// NewSender reads the progress an earlier run kept, if any.
func NewSender(o Options) (*Sender, error) {
	s := &Sender{o: o, state: map[string]int{}}
	if IsHTTP(o.To) {
		if o.Token == "" && o.TokenFile != "" {
			tok, err := os.ReadFile(o.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("token file: %w", err)
			}
			o.Token = strings.TrimSpace(string(tok))
		}
		if o.Token == "" {
			return nil, errors.New("an HTTP source needs its bearer token: --token-file")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.TLS
		s.to = &httpTransport{url: o.To, token: o.Token, size: max(o.Batch, 1), timeout: o.Timeout,
			client: &http.Client{Transport: tr, Timeout: o.Timeout}}
	} else {
		s.to = mllpTransport{&mllp.Client{Addr: o.To, TLSConfig: o.TLS, ReplyTimeout: o.Timeout}}
	}
	if o.Rate > 0 {
		s.interval = time.Duration(float64(time.Second) / o.Rate)
	}
	if b, err := os.ReadFile(o.StatePath); err == nil {
		if err := json.Unmarshal(b, &s.state); err != nil {
			return nil, fmt.Errorf("state %s: %w", o.StatePath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state: %w", err)
	}
	return s, nil
}

// Close keeps the progress and closes the connection.
func (s *Sender) Close() {
	_ = s.save()
	s.to.close()
}

func (s *Sender) save() error {
	b, _ := json.Marshal(s.state)
	tmp := s.o.StatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, s.o.StatePath)
}

// File sends one file's valid messages (msgs, as the survey split them,
// and valid, its verdicts) in order, after those an earlier run had sent,
// a batch at a time. data is the file's content: its digest keys the
// progress kept. An error ends the feed: the same run started again
// resumes.
func (s *Sender) File(ctx context.Context, name string, data []byte, msgs [][]byte, valid []bool) error {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	done := s.state[digest]
	var pending [][]byte
	var at []int                    // each pending message's index in msgs
	flush := func(upTo int) error { // messages before index upTo are done
		if len(pending) > 0 {
			codes, err := s.send(ctx, pending)
			if err != nil {
				return err
			}
			if s.Acked != nil {
				for j, c := range codes {
					s.Acked(name, at[j], c)
				}
			}
			pending, at = pending[:0], at[:0]
		}
		s.state[digest] = upTo
		if time.Since(s.saved) >= time.Second {
			if err := s.save(); err != nil {
				return fmt.Errorf("state: %w", err)
			}
			s.saved = time.Now()
		}
		return nil
	}
	for i := range msgs {
		if i < done {
			s.Skipped++
			continue
		}
		if valid[i] {
			pending, at = append(pending, msgs[i]), append(at, i)
		}
		if len(pending) >= s.to.batch() || i == len(msgs)-1 {
			if err := flush(i + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// send sends messages and checks their ACKs; a negative or missing one is
// counted.
func (s *Sender) send(ctx context.Context, msgs [][]byte) ([]string, error) {
	if s.interval > 0 {
		if wait := time.Until(s.last.Add(s.interval * time.Duration(len(msgs)))); wait > 0 {
			time.Sleep(wait)
		}
		s.last = time.Now()
	}
	codes, err := s.to.send(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("sending to %s: %w (run the same command again to resume)", secret.URL(s.o.To), err)
	}
	s.Sent += len(msgs)
	for _, c := range codes {
		if c != string(hl7.AA) && c != string(hl7.CA) {
			s.Refused++
		}
	}
	return codes, nil
}

// mllpTransport sends one message at a time over MLLP.
type mllpTransport struct{ client *mllp.Client }

func (m mllpTransport) batch() int { return 1 }
func (m mllpTransport) close()     { _ = m.client.Close() }

func (m mllpTransport) send(ctx context.Context, msgs [][]byte) ([]string, error) {
	codes := make([]string, len(msgs))
	for i, raw := range msgs {
		reply, err := m.client.Send(ctx, raw)
		if err != nil {
			return nil, err
		}
		if ack, err := hl7.ParseAck(reply); err == nil {
			codes[i] = string(ack.Code)
		}
	}
	return codes, nil
}

// httpTransport POSTs messages back to back to an HTTP source, and reads
// their ACKs, one per message in order, from the response. A 503 (the
// broker could not store some now) is sent again after its Retry-After,
// up to the timeout: what was stored is recognised as a resend.
type httpTransport struct {
	url, token string
	size       int
	timeout    time.Duration
	client     *http.Client
}

func (h *httpTransport) batch() int { return h.size }
func (h *httpTransport) close()     { h.client.CloseIdleConnections() }

func (h *httpTransport) send(ctx context.Context, msgs [][]byte) ([]string, error) {
	body := bytes.Join(msgs, nil)
	deadline := time.Now().Add(h.timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", ingest.ContentTypeER7)
		req.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := h.client.Do(req)
		if err != nil {
			return nil, secret.Error(err)
		}
		reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline):
			wait := time.Second
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
				wait = time.Duration(n) * time.Second
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			continue
		case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest:
			return nil, fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(reply[:min(len(reply), 200)])))
		}
		return ackCodes(reply, len(msgs)), nil
	}
}

// ackCodes are the MSA-1 codes of the ACKs back to back in reply, n of
// them ("" for any missing).
func ackCodes(reply []byte, n int) []string {
	codes := make([]string, n)
	if b, err := hl7.SplitBatch(reply, hl7.Limits{MaxMessageBytes: len(reply) + 1}); err == nil {
		for i, raw := range b.Messages {
			if i >= n {
				break
			}
			if ack, err := hl7.ParseAck(raw); err == nil {
				codes[i] = string(ack.Code)
			}
		}
	}
	return codes
}
