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
	"strings"
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
			return v
		default:
			if name != "" && !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			b, err := os.ReadFile(name)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("secret file %s cannot be read", name)
			}
			return strings.TrimRight(string(b), "\r\n")
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
	return p.String()
}

// Error returns err with the URL inside a *url.Error redacted (Go's HTTP
// client puts the whole request URL in its errors).
func Error(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: ue.Err}
}
