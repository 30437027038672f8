package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// httpType: an HTTP POST per message.
var httpType = Type{
	DestinationType: config.DestinationType{
		Name: "http",
		Keys: []string{"url", "headers", "content_type", "fhir_bundle", "time_zone", "charset"},
		Check: func(d config.DestinationConfig, key string, c *config.Checker) {
			checkHTTPURL(d, key, c)
			checkFHIREncoding(d, key, c)
		},
		Defaults: func(d *config.DestinationConfig) {
			if d.ContentType == "" {
				d.ContentType = map[string]string{"er7": "x-application/hl7-v2+er7", "json": "application/json", "fhir": "application/fhir+json"}[d.Encoding]
			}
		},
	},
	New: func(d config.DestinationConfig, env Env) (Deliverer, error) {
		return NewHTTPDeliverer(d.URL, d.ContentType, d.Headers, d.Timeout, env.TLS), nil
	},
}

func checkHTTPURL(d config.DestinationConfig, key string, c *config.Checker) {
	if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Add(key+".url", "%s is not an http or https URL", secret.URL(d.URL))
	}
}

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
		return Result{Outcome: Rejected, Reason: "bad request to " + secret.URL(d.URL)}
	}
	req.Header.Set("Content-Type", d.ContentType)
	req.Header.Set("X-HL7-Control-Id", msg.ControlID)
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := d.Client.Do(req)
	if err != nil { // its text holds the URL: a token in the query must not reach logs or the DLQ
		return Result{Outcome: Retry, Reason: secret.Error(err).Error()}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	code := strconv.Itoa(resp.StatusCode)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return Result{Outcome: Delivered, Code: code}
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return Result{Outcome: Retry, Reason: "HTTP " + resp.Status, Code: code}
	default:
		return Result{Outcome: Rejected, Reason: "HTTP " + resp.Status, Code: code}
	}
}

// Close releases idle connections.
func (d *HTTPDeliverer) Close() error { d.Client.CloseIdleConnections(); return nil }
