// Package secret keeps secrets out of config files and out of print: it
// expands references to environment variables and files (${env:NAME},
// ${file:PATH}) when a config is loaded, and redacts URLs wherever one is
// printed. Shared by config loading (broker), delivery (routing) and
// transforms.
package secret

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ref matches one reference: ${env:NAME} or ${file:PATH}.
var ref = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

// IsRef reports whether s is exactly one reference.
func IsRef(s string) bool {
	m := ref.FindStringIndex(s)
	return m != nil && m[0] == 0 && m[1] == len(s)
}

// Expand replaces every ${env:NAME} in s with that environment variable
// and every ${file:PATH} with the file's content less a trailing newline
// (PATH relative to dir). Anything else, a lone $ included, stays as it
// is. The error names a missing variable or an unreadable file, never a
// value.
func Expand(s, dir string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var firstErr error
	out := ref.ReplaceAllStringFunc(s, func(m string) string {
		sub := ref.FindStringSubmatch(m)
		kind, name := sub[1], strings.TrimSpace(sub[2])
		switch kind {
		case "env":
			v, ok := os.LookupEnv(name)
			if !ok && firstErr == nil {
				firstErr = fmt.Errorf("environment variable %s is not set", name)
			}
			remember(v)
			return v
		default:
			if name != "" && !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			b, err := os.ReadFile(name)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("secret file %s cannot be read", name)
			}
			v := strings.TrimRight(string(b), "\r\n")
			remember(v)
			return v
		}
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}

// Redacted is what stands in a printed URL for a secret.
const Redacted = "REDACTED"

// URL returns u fit to print: userinfo (a NATS user and password, or a
// token standing alone) and every query value replaced by REDACTED, and
// any fragment dropped. A URL that does not parse shows only its scheme.
// Comma-separated lists (nats.url) are redacted one by one.
func URL(u string) string {
	if strings.Contains(u, ",") {
		parts := strings.Split(u, ",")
		for i, p := range parts {
			parts[i] = URL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	p, err := url.Parse(u)
	if err != nil {
		scheme, _, ok := strings.Cut(u, "://")
		if !ok || strings.ContainsAny(scheme, "@:/?") {
			return "(a URL that does not parse)"
		}
		return scheme + "://(a URL that does not parse)"
	}
	if p.User != nil {
		p.User = url.User(Redacted)
	}
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			q[k] = []string{Redacted}
		}
		p.RawQuery = q.Encode()
	}
	p.Fragment, p.RawFragment = "", ""
	return Scrub(p.String())
}

// known are the values references were expanded to, each as written and
// as escaped in a URL's path and query: a secret may stand anywhere in a
// URL (https://hooks.example/hook/${env:TOKEN}/in), so a printed URL or
// error is scrubbed of each. Written when a config is loaded, read on
// every delivery attempt's reason: copied on write, read without a lock.
var known atomic.Pointer[[]string]

var knownMu sync.Mutex // serialises writers of known

// minKnown is the shortest value scrubbed: shorter ones would blank out
// ordinary text.
const minKnown = 4

func remember(v string) {
	if len(v) < minKnown {
		return
	}
	knownMu.Lock()
	defer knownMu.Unlock()
	var forms []string
	if cur := known.Load(); cur != nil {
		if slices.Contains(*cur, v) {
			return
		}
		forms = slices.Clone(*cur)
	}
	for _, f := range []string{v, url.PathEscape(v), url.QueryEscape(v)} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	known.Store(&forms)
}

// Scrub replaces every value a reference was expanded to (as it is, and
// as escaped in a URL path or query) with REDACTED.
func Scrub(s string) string {
	forms := known.Load()
	if s == "" || forms == nil {
		return s
	}
	for _, f := range *forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Redacted)
		}
	}
	return s
}

// Error returns err with the URL inside a *url.Error redacted (Go's HTTP
// client puts the whole request URL in its errors).
func Error(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: ue.Err}
	}
	if msg := err.Error(); Scrub(msg) != msg {
		return scrubbed{msg: Scrub(msg), err: err}
	}
	return err
}

// scrubbed is an error whose text had a secret in it; errors.Is and As
// still see the error it stands for.
type scrubbed struct {
	msg string
	err error
}

func (e scrubbed) Error() string { return e.msg }
func (e scrubbed) Unwrap() error { return e.err }
