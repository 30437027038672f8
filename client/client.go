// Package client talks to a running broker's admin API (/api/v1) with a
// bearer token: the CLI's operating commands use it, and so can scripts
// written in Go and the console's tests. Errors say what the server
// answered (status and reason) and never print the token; URLs in errors
// are redacted.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/internal/secret"
)

// DefaultServer is the admin URL when none is given.
const DefaultServer = "http://127.0.0.1:8080"

// Client calls one broker's API.
type Client struct {
	Server string // the admin base URL, such as https://broker:8080
	Token  string
	HTTP   *http.Client
}

// Options say where the broker and the token are.
type Options struct {
	Server    string // empty: DefaultServer; without a scheme, http://
	TokenFile string // a file holding the token (surrounding white space ignored)
	CAFile    string // a CA (PEM) to trust for an https Server
}

// ErrUsage marks errors in the options (no token file, an unreadable CA).
var ErrUsage = errors.New("usage")

// New reads the token and the CA, and makes a client.
func New(o Options) (*Client, error) {
	server := o.Server
	if server == "" {
		server = DefaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	if o.TokenFile == "" {
		return nil, fmt.Errorf("%w: give the API token's file", ErrUsage)
	}
	tok, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("%w: token file: %v", ErrUsage, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", ErrUsage, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file: no PEM certificate in %s", ErrUsage, o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{Server: strings.TrimRight(server, "/"), Token: strings.TrimSpace(string(tok)),
		HTTP: &http.Client{Timeout: 60 * time.Second, Transport: tr}}, nil
}

// Error is an answer of the server that is not a success: its status and
// the reason it gave. Status 0: the server could not be reached.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Call sends a request (body as JSON, if any) and decodes the answer into
// out: the raw JSON when out is a *json.RawMessage; nothing when out is
// nil.
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.Server + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, secret.Error(err))
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return &Error{Message: "cannot reach the broker: " + secret.Error(err).Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &Error{Message: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}
