package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/secret"
)

// FHIROptions are the keys of type fhir.
type FHIROptions struct {
	URL     string            `mapstructure:"url" secret:"expand"`     // the FHIR server's base URL
	Headers map[string]string `mapstructure:"headers" secret:"expand"` // extra request headers
	// Token is a bearer token, by reference only; or OAuth2's client
	// credentials.
	Token  string              `mapstructure:"token" secret:"ref"`
	OAuth2 config.OAuth2Config `mapstructure:"oauth2"`
}

// type fhir: each message converted to a FHIR R4 Bundle (encoding fhir)
// and POSTed to a FHIR server's base URL.
func init() {
	Register(Type[FHIROptions]{
		Name:      "fhir",
		Encodings: []string{"fhir"},
		Check: func(o *FHIROptions, _ config.DestinationConfig, key string, c *config.Checker) {
			checkHTTPURL(o.URL, key, c)
			oa := o.OAuth2
			switch {
			case o.Token != "" && oa.TokenURL != "":
				c.Add(key+".token", "give a token or oauth2, not both")
			case oa.TokenURL != "" || oa.ClientID != "" || oa.ClientSecret != "" || len(oa.Scopes) > 0:
				if u, err := url.Parse(oa.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					c.Add(key+".oauth2.token_url", "%s is not an http or https URL", secret.URL(oa.TokenURL))
				}
				if oa.ClientID == "" {
					c.Add(key+".oauth2.client_id", "client credentials need a client_id")
				}
				if oa.ClientSecret == "" {
					c.Add(key+".oauth2.client_secret", "client credentials need a client_secret, by reference")
				}
			}
		},
		Defaults: func(_ *FHIROptions, d *config.DestinationConfig) {
			if d.Encoding == "" || d.Encoding == "er7" { // er7 is every destination's default: a fhir one sends FHIR
				d.Encoding = "fhir"
			}
		},
		New: newFHIRDeliverer,
	})
}

func newFHIRDeliverer(o *FHIROptions, d config.DestinationConfig, env Env) (Deliverer, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = env.TLS
	client := &http.Client{Timeout: d.Timeout, Transport: tr}
	if o.OAuth2.TokenURL != "" {
		cc := clientcredentials.Config{ClientID: o.OAuth2.ClientID, ClientSecret: o.OAuth2.ClientSecret,
			TokenURL: o.OAuth2.TokenURL, Scopes: o.OAuth2.Scopes}
		// the token endpoint is asked through the same transport (TLS, timeout)
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: d.Timeout, Transport: tr})
		client.Transport = &oauth2.Transport{Source: cc.TokenSource(ctx), Base: tr}
	}
	target := strings.TrimRight(o.URL, "/")
	if d.FHIRBundle == "collection" { // a collection is stored as a Bundle resource, not processed
		target += "/Bundle"
	}
	return &FHIRDeliverer{URL: target, Token: o.Token, Headers: o.Headers, Client: client}, nil
}

// FHIRDeliverer POSTs each Bundle to a FHIR server. 2xx with every entry
// of the transaction-response 2xx: delivered. 4xx, or an entry that
// failed: rejected, the reason built from the OperationOutcome's issue
// codes and locations (never its text, which may quote the data). 401 and
// 403: retried, since credentials are not the message's fault. 408, 429,
// 5xx and transport errors: retried.
type FHIRDeliverer struct {
	URL     string
	Token   string // bearer token; empty with OAuth 2.0 (in the client) or none
	Headers map[string]string
	Client  *http.Client
}

var fhirHeaders = map[string]string{"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

// Deliver posts msg.Data, a Bundle.
func (d *FHIRDeliverer) Deliver(ctx context.Context, msg Message) Result {
	resp, body, failed := post(ctx, d.Client, d.URL, msg, fhirHeaders, d.Headers, d.Token, 4<<20)
	if failed != nil {
		return *failed
	}
	res := d.answered(resp, body)
	res.Response = httpResponse(resp, body)
	return res
}

// answered is what the FHIR server's response says.
func (d *FHIRDeliverer) answered(resp *http.Response, body []byte) Result {
	code := strconv.Itoa(resp.StatusCode)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if failed := failedEntries(body); failed != "" {
			return Result{Outcome: Rejected, Reason: "FHIR server accepted the Bundle but " + failed, Code: code}
		}
		return Result{Outcome: Delivered, Code: code}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return Result{Outcome: Retry, Reason: "HTTP " + resp.Status + ": the FHIR server refused the broker's credentials (token or oauth2)", Code: code}
	case retryableStatus(s):
		return Result{Outcome: Retry, Reason: "HTTP " + resp.Status + outcomeIssues(body), Code: code}
	default:
		return Result{Outcome: Rejected, Reason: "HTTP " + resp.Status + outcomeIssues(body), Code: code}
	}
}

// Close releases idle connections.
func (d *FHIRDeliverer) Close() error { d.Client.CloseIdleConnections(); return nil }

// operationOutcome is what a reason may use of an OperationOutcome:
// codes and locations, not text.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity   string   `json:"severity"`
		Code       string   `json:"code"`
		Expression []string `json:"expression"`
		Location   []string `json:"location"`
		Details    struct {
			Coding []struct {
				Code string `json:"code"`
			} `json:"coding"`
		} `json:"details"`
	} `json:"issue"`
}

// outcomeIssues renders an OperationOutcome body as ": error invalid at
// Bundle.entry[2].resource.code; ...", or "" when the body is not one.
func outcomeIssues(body []byte) string {
	var oo operationOutcome
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	return ": " + renderIssues(oo)
}

func renderIssues(oo operationOutcome) string {
	var parts []string
	for i, is := range oo.Issue {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(oo.Issue)-5))
			break
		}
		p := is.Severity + " " + is.Code
		for _, c := range is.Details.Coding {
			p += " " + c.Code
		}
		if where := append(is.Expression, is.Location...); len(where) > 0 {
			p += " at " + where[0]
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// failedEntries names the entries of a transaction-response (or
// batch-response) whose status is not 2xx; "" when all succeeded.
func failedEntries(body []byte) string {
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Response struct {
				Status  string           `json:"status"`
				Outcome operationOutcome `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &b) != nil || b.ResourceType != "Bundle" {
		return ""
	}
	var failed []string
	for i, e := range b.Entry {
		st := strings.TrimSpace(e.Response.Status)
		if st == "" || strings.HasPrefix(st, "2") {
			continue
		}
		f := fmt.Sprintf("entry %d: %s", i, strings.Fields(st)[0])
		if len(e.Response.Outcome.Issue) > 0 {
			f += " (" + renderIssues(e.Response.Outcome) + ")"
		}
		failed = append(failed, f)
	}
	if len(failed) == 0 {
		return ""
	}
	return strings.Join(failed, ", ")
}
