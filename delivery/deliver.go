package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/fsutil"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/mllp"
)

// Outcome of one delivery attempt.
type Outcome int

const (
	Delivered Outcome = iota // the endpoint accepted it
	Retry                    // a temporary failure: try again after the backoff
	Rejected                 // the endpoint refused it for good (AR/CR, HTTP 4xx)
)

// Result is one attempt's outcome and, unless delivered, why, in words
// with no message content (codes, statuses, error texts of transports).
type Result struct {
	Outcome Outcome
	Reason  string
}

// Message is one message to deliver: its bytes as routed (and encoded
// for the destination) and what a deliverer may name it by. It carries no
// content beyond the bytes: a Deliverer knows nothing of how it was
// stored.
type Message struct {
	Data      []byte
	ControlID string // MSH-10
	InSeq     uint64 // its input's HL7_IN sequence: a stable, ordered number
}

// Deliverer forwards one message to a downstream endpoint. Deliver is
// called once per attempt, never concurrently for a fifo destination; it
// returns what the endpoint said. The worker decides about retries.
type Deliverer interface {
	Deliver(ctx context.Context, m Message) Result
	Close() error
}

// MLLPDeliverer sends over a kept MLLP connection and checks the ACK:
// AA/CA delivered; AE/CE retry; AR/CR rejected; no ACK, a timeout, an
// MSA-2 that is not the MSH-10 sent, or a connection error: retry.
type MLLPDeliverer struct{ Client *mllp.Client }

// Deliver sends data and reads its ACK.
func (d *MLLPDeliverer) Deliver(ctx context.Context, msg Message) Result {
	data := msg.Data
	reply, err := d.Client.Send(ctx, data)
	if err != nil {
		return Result{Retry, err.Error()}
	}
	ack, err := hl7.ParseAck(reply)
	if err != nil {
		return Result{Retry, "reply is not an ACK: " + err.Error()}
	}
	if m, err := hl7.Parse(data); err == nil && ack.ControlID != m.ControlID() {
		// The connection's replies are out of step (a stale ACK, a
		// receiver that answers the previous message): a new connection
		// makes the retry's ACK its own.
		d.Client.Reset()
		return Result{Retry, "ACK's MSA-2 is not the MSH-10 sent; reconnecting"}
	}
	// Only codes: the receiver's ERR texts are free text and may quote
	// the message, and this reason is logged and kept in the DLQ.
	reason := string(ack.Code)
	for _, e := range ack.Errors {
		reason += fmt.Sprintf(" [ERR %d]", e.Code)
	}
	switch ack.Code {
	case hl7.AA, hl7.CA:
		return Result{Delivered, ""}
	case hl7.AR, hl7.CR:
		return Result{Rejected, reason}
	}
	return Result{Retry, reason}
}

// Close closes the connection.
func (d *MLLPDeliverer) Close() error { return d.Client.Close() }

// FileDeliverer writes each message to its own file in Dir, atomically
// (a temporary file, then a rename): NNNNNNNNNN-<control ID>.<Ext> by
// HL7_IN sequence; Ext is hl7 when empty.
type FileDeliverer struct{ Dir, Ext string }

// Deliver writes data.
func (d *FileDeliverer) Deliver(_ context.Context, msg Message) Result {
	data, seq := msg.Data, msg.InSeq
	ext := d.Ext
	if ext == "" {
		ext = "hl7"
	}
	name := filepath.Join(d.Dir, fmt.Sprintf("%010d-%s.%s", seq, fsutil.SafeName(msg.ControlID), ext))
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return Result{Retry, err.Error()}
	}
	if err := fsutil.WriteAtomic(name, data); err != nil {
		return Result{Retry, err.Error()}
	}
	return Result{Delivered, ""}
}

// Close does nothing.
func (d *FileDeliverer) Close() error { return nil }

// HTTPDeliverer POSTs each message. 2xx delivered; 408, 429, 5xx and
// transport errors or timeouts retry; any other status is rejected.
type HTTPDeliverer struct {
	URL         string
	ContentType string
	Headers     map[string]string
	Client      *http.Client
}

// NewHTTPDeliverer returns an HTTPDeliverer with its own client.
func NewHTTPDeliverer(url, contentType string, headers map[string]string, timeout time.Duration, tlsCfg *tls.Config) *HTTPDeliverer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &HTTPDeliverer{URL: url, ContentType: contentType, Headers: headers, Client: &http.Client{Timeout: timeout, Transport: tr}}
}

// Deliver posts data.
func (d *HTTPDeliverer) Deliver(ctx context.Context, msg Message) Result {
	data := msg.Data
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(data))
	if err != nil {
		return Result{Rejected, "bad request to " + secret.URL(d.URL)}
	}
	req.Header.Set("Content-Type", d.ContentType)
	req.Header.Set("X-HL7-Control-Id", msg.ControlID)
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := d.Client.Do(req)
	if err != nil { // its text holds the URL: a token in the query must not reach logs or the DLQ
		return Result{Retry, secret.Error(err).Error()}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return Result{Delivered, ""}
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return Result{Retry, "HTTP " + resp.Status}
	default:
		return Result{Rejected, "HTTP " + resp.Status}
	}
}

// Close releases idle connections.
func (d *HTTPDeliverer) Close() error { d.Client.CloseIdleConnections(); return nil }
