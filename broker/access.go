package broker

// Who may use the admin API, and the trail of what they did: API tokens
// (hashes only) and audit entries in HL7_AUDIT.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
)

// apiTokens reads the configured tokens, keeping only their hashes; an
// optional one that is missing is left out, and named in missing.
func apiTokens(cfg *config.Config) (tokens []admin.Token, missing []string, err error) {
	var out []admin.Token
	for _, t := range cfg.Admin.Tokens {
		secret, err := cfg.ReadToken(t)
		if t.Optional && errors.Is(err, config.ErrTokenMissing) {
			missing = append(missing, t.Name)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("admin.tokens %s: %w", t.Name, err)
		}
		out = append(out, admin.NewToken(t.Name, t.Role, secret).Scoped(t.Sources, t.Destinations))
	}
	return out, missing, nil
}

// warnMissingTokens names the optional tokens left out.
func (b *Broker) warnMissingTokens(missing []string) {
	for _, name := range missing {
		b.log.Warn().Str("token", name).Msg("admin.tokens: this optional token's file or variable is missing, so it is left out (create it and reload)")
	}
}

// audit appends an entry to HL7_AUDIT; a failure is logged (the entry has
// no content, so it can be).
func (b *Broker) audit(ctx context.Context, e wire.AuditEntry) error {
	err := b.nats.AuditRoom()
	if err == nil {
		err = store.AppendAudit(ctx, b.nats.JetStream, e)
	}
	if err != nil {
		b.log.Error().Str("action", e.Action).Str("user", e.User).Str("reason", err.Error()).Msg("audit entry could not be stored")
	}
	return err
}

// auditReload records a config reload in the audit trail.
func (b *Broker) auditReload(result string, err error) {
	e := wire.AuditEntry{At: time.Now().UTC(), User: "config-file", Action: "config.reload", Result: result, IDs: []string{}}
	if err != nil {
		e.Result = result + ": " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	go func() { _ = b.audit(context.Background(), e) }()
}

// signInWays are the ways people sign in as themselves (admin.oidc,
// admin.ldap), nil where not configured.
func signInWays(cfg *config.Config) (*admin.OIDC, *admin.LDAP, error) {
	var o *admin.OIDC
	var l *admin.LDAP
	if c := cfg.Admin.OIDC; c.Issuer != "" {
		o = &admin.OIDC{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
			GroupsClaim: c.GroupsClaim, UserClaim: c.UserClaim, Scopes: c.Scopes, Roles: c.Roles, Limits: groupLimits(c.Limits)}
	}
	if c := cfg.Admin.LDAP; c.URL != "" {
		l = &admin.LDAP{URL: c.URL, StartTLS: c.StartTLS, BindDN: c.BindDN, BindPassword: c.BindPassword, UserBase: c.UserBase,
			UserFilter: c.UserFilter, GroupAttribute: c.GroupAttribute, Roles: c.Roles, Limits: groupLimits(c.Limits), Timeout: c.Timeout}
		if c.CAFile != "" {
			tlsCfg, err := trusting("admin.ldap.ca_file", cfg.LDAPCAFile())
			if err != nil {
				return nil, nil, err
			}
			if u, err := url.Parse(c.URL); err == nil {
				tlsCfg.ServerName = u.Hostname()
			}
			l.TLS = tlsCfg
		}
	}
	return o, l, nil
}

// groupLimits are the config's limits of groups, as admin keeps them.
func groupLimits(c map[string]config.GroupLimits) map[string]admin.Limits {
	out := map[string]admin.Limits{}
	for g, l := range c {
		out[g] = admin.Limits{Sources: l.Sources, Destinations: l.Destinations}
	}
	return out
}

// trusting is a TLS client config that trusts the CAs in file (at key).
func trusting(key, file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", key)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
