package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/routing"
)

// reloadStatus is the last reload's outcome, for /readyz.
type reloadStatus struct {
	at     time.Time
	err    string // "": applied (or none yet)
	result string // applied, partly_applied, invalid; "" before any
}

// ReloadFile loads file and, if it is valid as a whole, applies it with
// Reload. If it is not, the running config stays, each problem is
// logged, counted in hl7broker_config_reloads_total{result="invalid"} and
// shown in /readyz's detail.
func (b *Broker) ReloadFile(file string) error {
	cfg, err := config.Load(file)
	if err == nil {
		err = b.Reload(cfg)
	} else {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				b.log.Error().Str("problem", p.String()).Msg("config reload refused: the running config stays")
			}
		}
		b.reloaded(err, "invalid")
	}
	return err
}

// Reload applies cfg (valid as a whole) to the running broker: new and
// changed destinations' workers start first, then the router takes the
// new routes, transforms and unrouted.to at once, between two messages,
// then removed and changed destinations' workers stop; listeners that
// were removed or changed stop (letting messages in flight finish), new
// and changed ones start, and the others are not touched. data_dir, nats
// and admin need a restart: a change to them is logged and left.
func (b *Broker) Reload(cfg *config.Config) error {
	if b.stopping.Load() {
		return errors.New("reload: the broker is stopping")
	}
	if problems := cfg.FitPayload(b.nats.MaxPayload(), b.nats.Server() != nil); len(problems) > 0 {
		err := config.NewError(cfg.File(), problems)
		b.reloaded(err, "invalid")
		return err
	}
	table, err := routingTable(cfg, b.log)
	if err != nil {
		b.reloaded(err, "invalid")
		return err
	}
	b.mu.Lock()
	err = b.apply(cfg, table)
	b.mu.Unlock()
	b.notifyReload(err)
	return err
}

// apply is Reload's work; b.mu is held.
func (b *Broker) apply(cfg *config.Config, table *routing.Table) error {
	if b.stopping.Load() {
		return errors.New("the broker is shutting down")
	}
	old := b.cfg
	oldAdmin, newAdmin := old.Admin, cfg.Admin
	oldAdmin.Tokens, newAdmin.Tokens = nil, nil                             // tokens change on reload
	oldAdmin.OIDC, newAdmin.OIDC = config.OIDCConfig{}, config.OIDCConfig{} // and the ways people sign in
	oldAdmin.LDAP, newAdmin.LDAP = config.LDAPConfig{}, config.LDAPConfig{}
	oldAdmin.NotReadyWhenFailing, newAdmin.NotReadyWhenFailing = 0, 0 // and this
	if old.DataDir != cfg.DataDir || !reflect.DeepEqual(old.NATS, cfg.NATS) || !reflect.DeepEqual(oldAdmin, newAdmin) || !reflect.DeepEqual(old.History, cfg.History) || !reflect.DeepEqual(old.Tracing, cfg.Tracing) {
		b.log.Warn().Msg("config reload: data_dir, nats, history, tracing and admin (but its tokens, oidc and ldap) change only on restart; those keys keep their running values")
	}
	next := *cfg
	next.DataDir, next.NATS, next.History, next.Tracing = old.DataDir, old.NATS, old.History, old.Tracing
	next.Admin.Addr, next.Admin.TLS, next.Admin.AuditAge = old.Admin.Addr, old.Admin.TLS, old.Admin.AuditAge
	if tokens, missing, err := apiTokens(&next); err != nil {
		b.log.Error().Str("reason", err.Error()).Msg("config reload: API tokens not changed")
		next.Admin.Tokens = old.Admin.Tokens
	} else {
		b.tokens.Set(tokens)
		b.warnMissingTokens(missing)
	}
	if oidc, ldap, err := signInWays(&next); err != nil {
		b.log.Error().Str("reason", err.Error()).Msg("config reload: admin.oidc and admin.ldap not changed")
		next.Admin.OIDC, next.Admin.LDAP = old.Admin.OIDC, old.Admin.LDAP
	} else {
		b.people.Set(oidc, ldap)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// New and changed destinations' workers first, then the routes that
	// send to them; a destination removed keeps what is queued for it.
	errs := []error{b.host.sync(ctx, "destination", b.workerParts(&next))}
	b.router.SetTable(table)
	var removed []string
	for _, d := range old.Destinations {
		if !slices.ContainsFunc(next.Destinations, func(n config.DestinationConfig) bool { return n.Name == d.Name }) {
			removed = append(removed, d.Name)
		}
	}
	if len(removed) > 0 {
		b.log.Warn().Strs("destinations", removed).Msg("config reload: destinations removed; anything still queued for them stays in HL7_OUT")
	}
	errs = append(errs, b.host.sync(ctx, "listener", b.listenerParts(&next)), b.host.sync(ctx, "source", b.sourceParts(&next)),
		b.setAlertRules(b.alerts, &next))
	b.cfg = &next
	err := errors.Join(errs...)
	b.reloadedLocked(err, "applied")
	if err == nil {
		b.log.Info().Int("listeners", len(next.Listeners)).Int("routes", len(next.Routes)).
			Int("destinations", len(next.Destinations)).Msg("config reloaded")
	}
	return err
}

func byName[T any](items []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[name(it)] = it
	}
	return m
}

func (b *Broker) reloaded(err error, result string) {
	b.mu.Lock()
	b.reloadedLocked(err, result)
	b.mu.Unlock()
	b.notifyReload(err)
}

// reloadedLocked records a reload's outcome; b.mu is held.
func (b *Broker) reloadedLocked(err error, result string) {
	b.lastReload = reloadStatus{at: time.Now()}
	if err == nil {
		b.loadedAt = b.lastReload.at
	}
	if err != nil {
		if result == "applied" {
			result = "partly_applied" // a listener could not bind: see the log
		}
		b.lastReload.err = fmt.Sprintf("reload at %s failed, previous config running: %s",
			b.lastReload.at.UTC().Format(time.RFC3339), strings.ReplaceAll(err.Error(), "\n", "; "))
		b.log.Error().Str("reason", err.Error()).Str("result", result).Msg("config reload failed")
	}
	b.lastReload.result = result
	b.metrics.reloads.WithLabelValues(result).Inc()
	b.auditReload(result, err)
}

// notifyReload calls the OnReload hook; b.mu is not held.
func (b *Broker) notifyReload(err error) {
	if b.hooks.OnReload != nil {
		b.hooks.OnReload(err)
	}
}

// WatchFile reloads file when it changes on disk: any write, create or
// rename of it, settled for settle (editors write in several steps), then
// ReloadFile. It watches the folder, so a file replaced by a rename (how
// many editors and deploy tools save) is seen too. It stops at Shutdown.
func (b *Broker) WatchFile(file string, settle time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", file, err)
	}
	abs, err := filepath.Abs(file)
	if err == nil {
		err = w.Add(filepath.Dir(abs))
	}
	if err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", file, err)
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-b.runCtx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					timer = time.After(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				b.log.Warn().Err(err).Msg("watching the config file")
			case <-timer:
				timer = nil
				b.log.Info().Str("file", file).Msg("config file changed: reloading")
				_ = b.ReloadFile(file)
			}
		}
	}()
	return nil
}

// ServeFile runs until ctx ends, as `serve` does: it reloads file on each
// value from reload (SIGHUP) and, with watch, when the file changes; then
// it shuts down, giving messages in flight up to grace.
func (b *Broker) ServeFile(ctx context.Context, file string, reload <-chan os.Signal, watch bool, grace time.Duration) {
	if watch {
		if err := b.WatchFile(file, 300*time.Millisecond); err != nil {
			b.log.Warn().Err(err).Msg("not watching the config file; SIGHUP still reloads it")
		}
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-reload:
			b.log.Info().Msg("SIGHUP: reloading the config file")
			_ = b.ReloadFile(file)
		}
	}
	b.log.Info().Dur("grace", grace).Msg("stopping: finishing messages in flight")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		b.log.Warn().Err(err).Msg("stopped before every message in flight finished; their senders will resend")
	}
}
