package broker

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/admin"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

// readiness is /readyz's answer: NATS connected, streams present,
// listeners bound, storing works, every supervised part running.
func (b *Broker) readiness(ctx context.Context) admin.Readiness {
	res := admin.Readiness{Ready: true, Checks: map[string]string{"nats": "ok", "streams": "ok", "listeners": "ok", "config": "ok", "components": "ok", "storage": "ok"}}
	fail := func(check, why string) { res.Ready, res.Checks[check] = false, why }
	if s := b.nats.Conn.Status(); s != nats.CONNECTED {
		fail("nats", "not connected: "+s.String())
	} else {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		for _, name := range []string{wire.StreamIn, wire.StreamOut, wire.StreamDLQ} {
			if _, err := b.nats.JetStream.Stream(ctx, name); err != nil {
				fail("streams", name+": "+err.Error())
			}
		}
	}
	b.mu.Lock()
	bound, want, reload := len(b.host.values("listener")), len(b.cfg.Listeners), b.lastReload
	b.mu.Unlock()
	if b.stopping.Load() {
		fail("listeners", "shutting down")
	} else if bound != want {
		fail("listeners", fmt.Sprintf("%d of %d bound", bound, want))
	}
	if why := b.store.Problem(); why != "" {
		fail("storage", why)
	}
	if bad := b.sup.unhealthy(); len(bad) > 0 {
		fail("components", strings.Join(bad, "; "))
	}
	// A source with files it cannot move on still takes everything else:
	// still ready (a balancer must not cut the MLLP senders off for it),
	// and the detail says which files and why.
	res.Checks["sources"] = "ok"
	var stuck []string
	for name, r := range valuesOf[*sourceRun](b.host, "source") {
		if r.problem != nil {
			if p := r.problem(); p != "" {
				stuck = append(stuck, "source "+name+": "+p)
			}
		}
	}
	if len(stuck) > 0 {
		sort.Strings(stuck)
		res.Checks["sources"] = strings.Join(stuck, "; ")
	}
	// A destination failing is the downstream's health, not this
	// broker's: ready, unless the operator asked otherwise.
	if after := b.notReadyWhenFailing(); after > 0 {
		var failing []string
		b.lastErr.Range(func(k, v any) bool {
			if le := v.(lastError); time.Since(le.since) >= after {
				failing = append(failing, fmt.Sprintf("destination %s: failing for %s: %s", k, time.Since(le.since).Round(time.Second), le.reason))
			}
			return true
		})
		if len(failing) > 0 {
			sort.Strings(failing)
			fail("destinations", strings.Join(failing, "; "))
		}
	}
	// A reload that failed leaves the previous config running: still
	// ready, and the detail says what is wrong with the file.
	if reload.err != "" {
		res.Checks["config"] = reload.err
	}
	return res
}

func (b *Broker) notReadyWhenFailing() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Admin.NotReadyWhenFailing
}

// AdminAddr is the admin server's bound address (nil when off).
func (b *Broker) AdminAddr() net.Addr {
	if b.admin == nil {
		return nil
	}
	return b.admin.Addr()
}
