package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
	"github.com/hl7broker/hl7broker/wire"
)

// HTTPOptions are the keys of type http.
type HTTPOptions struct {
	URL         string            `mapstructure:"url" secret:"expand"`     // where messages are POSTed
	Headers     map[string]string `mapstructure:"headers" secret:"expand"` // extra request headers
	ContentType string            `mapstructure:"content_type"`            // default by encoding
}

// type http: an HTTP POST per message.
func init() {
	Register(Type[HTTPOptions]{
		Name: "http",
		Check: func(o *HTTPOptions, _ config.DestinationConfig, key string, c *config.Checker) {
			checkHTTPURL(o.URL, key, c)
		},
		Defaults: func(o *HTTPOptions, d *config.DestinationConfig) {
			if o.ContentType == "" {
				o.ContentType = map[string]string{"er7": "x-application/hl7-v2+er7", "json": "application/json", "fhir": "application/fhir+json"}[d.Encoding]
			}
		},
		New: func(o *HTTPOptions, d config.DestinationConfig, env Env) (Deliverer, error) {
			return NewHTTPDeliverer(o.URL, o.ContentType, o.Headers, d.Timeout, env.TLS), nil
		},
	})
}

func checkHTTPURL(target, key string, c *config.Checker) {
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Add(key+".url", "%s is not an http or https URL", secret.URL(target))
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
	resp, body, failed := post(ctx, d.Client, d.URL, msg, map[string]string{"Content-Type": d.ContentType}, d.Headers, "", wire.ResponseKept)
	if failed != nil {
		return *failed
	}
	res := Result{Outcome: Rejected, Reason: "HTTP " + resp.Status, Code: strconv.Itoa(resp.StatusCode), Response: httpResponse(resp, body)}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		res.Outcome, res.Reason = Delivered, ""
	case retryableStatus(s):
		res.Outcome = Retry
	}
	return res
}

// httpResponse is what the message's page shows of a response: its
// status line and the start of its body.
func httpResponse(resp *http.Response, body []byte) []byte {
	out := append([]byte("HTTP "+resp.Status+"\n"), "Content-Type: "+resp.Header.Get("Content-Type")+"\n\n"...)
	return append(out, body[:min(len(body), wire.ResponseKept)]...)
}

// post POSTs msg.Data to url with the given headers, the message's
// control ID (X-HL7-Control-Id), the destination's own headers and, when
// set, a bearer token (which those cannot replace). It returns the
// response (its body closed) with up to keep bytes of its body. With no
// response it returns the Result instead: rejected for a URL that makes
// no request, retried otherwise, the reason redacted (an error's text
// holds the URL, whose query may carry a token, and an OAuth 2.0 error
// the token endpoint's reply: only its first line).
func post(ctx context.Context, c *http.Client, url string, msg Message, headers, own map[string]string, token string, keep int64) (*http.Response, []byte, *Result) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg.Data))
	if err != nil {
		return nil, nil, &Result{Outcome: Rejected, Reason: "bad request to " + secret.URL(url)}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-HL7-Control-Id", msg.ControlID)
	for k, v := range own {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		reason, _, _ := strings.Cut(secret.Error(err).Error(), "\n")
		return nil, nil, &Result{Outcome: Retry, Reason: reason}
	}
	var body []byte
	if keep > 0 {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, keep))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // the rest, so the connection is reused
	resp.Body.Close()
	return resp, body, nil
}

// retryableStatus: a status worth retrying (timeout, rate limit, server
// error), not the message's fault.
func retryableStatus(s int) bool {
	return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
}

// Close releases idle connections.
func (d *HTTPDeliverer) Close() error { d.Client.CloseIdleConnections(); return nil }
