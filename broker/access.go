package broker

// Who may use the admin API, and the trail of what they did: API tokens
// (hashes only) and audit entries in HL7_AUDIT.

import (
	"context"
	"errors"
	"fmt"
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
