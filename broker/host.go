package broker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// The broker is a host of parts: every listener, source, destination
// worker, the router, the janitor, the memory trimmer, the rate sampler
// and the store's keeper is a part, known by a name ("listener:adt",
// "destination:emr", "router") and the config it runs with. One loop
// (host.sync) serves start, reload and stop: a part whose config changed
// is stopped and started again, a new one started, one gone stopped. Each
// runs under the supervisor (DESIGN invariant 7).

// part is one component of the broker.
type part struct {
	name string
	// config is what it runs with: a sync restarts the part when it
	// changes (reflect.DeepEqual). nil for parts no config changes.
	config any
	// start prepares it (binds its port, makes its source): an error means
	// it did not start. It returns what runs under supervision (nil: the
	// part is held, such as a paused destination, and nothing runs), how
	// to stop it gracefully before its context ends (nil: the end of its
	// context is enough), and a value the broker reads while it runs (a
	// listener's server, for its address and connections).
	start func() (run func(context.Context) error, stop func(context.Context) error, value any, err error)
}

// running is a started part.
type running struct {
	part   part
	value  any
	stop   func(context.Context) error
	cancel context.CancelFunc
	done   chan struct{} // closed when its run has returned for good
}

// host runs parts under a supervisor.
type host struct {
	sup *supervisor
	ctx context.Context // the parts' parent: ends at shutdown

	mu      sync.Mutex
	running map[string]*running
	order   []string // names in the order started: stopped in reverse
}

func newHost(ctx context.Context, sup *supervisor) *host {
	return &host{sup: sup, ctx: ctx, running: map[string]*running{}}
}

// kind is the kind of a part's name: "listener" of "listener:adt".
func kind(name string) string { k, _, _ := strings.Cut(name, ":"); return k }

// start starts p; an error leaves it not running.
func (h *host) start(p part) error {
	run, stop, value, err := p.start()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(h.ctx)
	r := &running{part: p, value: value, stop: stop, cancel: cancel, done: make(chan struct{})}
	if run == nil {
		close(r.done)
	} else {
		go func() {
			defer close(r.done)
			h.sup.run(ctx, p.name, run)
		}()
	}
	h.mu.Lock()
	h.running[p.name] = r
	h.order = append(h.order, p.name)
	h.mu.Unlock()
	return nil
}

// stop stops the named parts, in the order given: each one's context ends
// (so that its supervisor does not start it again), then it is stopped
// gracefully (its stop, bounded by ctx: a listener lets the messages in
// flight finish), and its run is waited for.
func (h *host) stop(ctx context.Context, names ...string) error {
	var errs []error
	for _, name := range names {
		h.mu.Lock()
		r, ok := h.running[name]
		if ok {
			delete(h.running, name)
			h.order = slices.DeleteFunc(h.order, func(n string) bool { return n == name })
		}
		h.mu.Unlock()
		if !ok {
			continue
		}
		r.cancel()
		if r.stop != nil {
			if err := r.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		<-r.done
	}
	return errors.Join(errs...)
}

// stopAll stops every part, the last started first.
func (h *host) stopAll(ctx context.Context) error {
	h.mu.Lock()
	names := slices.Clone(h.order)
	h.mu.Unlock()
	slices.Reverse(names)
	return h.stop(ctx, names...)
}

// sync makes the running parts of kind k those of want: a part gone, or
// whose config changed, is stopped; then each part not running is started,
// in want's order. Parts of other kinds are left alone. Every part that
// could not start is in the error; the others run.
func (h *host) sync(ctx context.Context, k string, want []part) error {
	wanted := map[string]part{}
	for _, p := range want {
		wanted[p.name] = p
	}
	h.mu.Lock()
	var gone []string
	for _, name := range h.order {
		if kind(name) != k {
			continue
		}
		if p, ok := wanted[name]; !ok || !reflect.DeepEqual(p.config, h.running[name].part.config) {
			gone = append(gone, name)
		}
	}
	h.mu.Unlock()
	errs := []error{h.stop(ctx, gone...)}
	for _, p := range want {
		if _, ok := h.get(p.name); !ok {
			errs = append(errs, h.start(p))
		}
	}
	return errors.Join(errs...)
}

// get returns a running part.
func (h *host) get(name string) (*running, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.running[name]
	return r, ok
}

// values are the values of the running parts of kind k, by the rest of
// their names ("adt" of "listener:adt").
func (h *host) values(k string) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]any{}
	for name, r := range h.running {
		if kind(name) == k {
			out[strings.TrimPrefix(name, k+":")] = r.value
		}
	}
	return out
}

// valuesOf are values, typed: the running parts of kind k whose value is
// a T.
func valuesOf[T any](h *host, k string) map[string]T {
	out := map[string]T{}
	for name, v := range h.values(k) {
		if t, ok := v.(T); ok {
			out[name] = t
		}
	}
	return out
}
