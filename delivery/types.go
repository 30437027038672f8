package delivery

import (
	"crypto/tls"
	"fmt"
	"reflect"
	"sync"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/script"
)

// Type is one kind of destination whose own keys are the struct T (its
// mapstructure tags, as a config file writes them; the keys every
// destination has are config.DestinationConfig's). A kind is one file: T,
// a Type registered by Register in that file's init, and its Deliverer.
type Type[T any] struct {
	Name string
	// Encodings are those it can send; empty: every one (er7, json, fhir).
	Encodings []string
	// ReadsTimes: it reads HL7 times itself, so time_zone applies to it
	// whatever its encoding.
	ReadsTimes bool
	// Check adds a problem for anything wrong with its keys (o) on
	// destination d, at key (destinations[2]); enumerated values (an enum
	// tag) are checked without it.
	Check func(o *T, d config.DestinationConfig, key string, c *config.Checker)
	// Defaults fills its keys left out (and may settle a common one).
	Defaults func(o *T, d *config.DestinationConfig)
	// Warnings are what a valid destination of it does that is risky.
	Warnings func(o *T, key string) []config.Problem
	// New makes a Deliverer for destination d, already validated. Each
	// delivery slot gets its own (see Destination.NewDeliverer).
	New func(o *T, d config.DestinationConfig, env Env) (Deliverer, error)
}

// Env is what a Type's New gets besides the destination's config.
type Env struct {
	TLS *tls.Config // from the destination's tls keys; nil without them
}

var (
	makersMu sync.RWMutex
	makers   = map[string]func(config.DestinationConfig, Env) (Deliverer, error){}
)

// Register makes a kind of destination known to the config (its keys,
// checks, defaults and warnings) and to New. It panics if the name is
// taken.
func Register[T any](t Type[T]) {
	reg := config.DestinationType{Name: t.Name, Options: reflect.TypeFor[T](), Encodings: t.Encodings, ReadsTimes: t.ReadsTimes}
	if t.Check != nil {
		reg.Check = func(d config.DestinationConfig, key string, c *config.Checker) {
			t.Check(config.OptionsOf[T](d), d, key, c)
		}
	}
	if t.Defaults != nil {
		reg.Defaults = func(d *config.DestinationConfig) { t.Defaults(config.OptionsOf[T](*d), d) }
	}
	if t.Warnings != nil {
		reg.Warnings = func(d config.DestinationConfig, key string) []config.Problem {
			return t.Warnings(config.OptionsOf[T](d), key)
		}
	}
	config.RegisterDestinationType(reg)
	makersMu.Lock()
	defer makersMu.Unlock()
	makers[t.Name] = func(d config.DestinationConfig, env Env) (Deliverer, error) {
		return t.New(config.OptionsOf[T](d), d, env)
	}
}

// New makes a Deliverer for destination d by its type: its TLS files
// loaded, and the copies encoded as d asks (its encoder, compiled: enc;
// JSON, FHIR, or ER7 with its segment terminator).
func New(d config.DestinationConfig, enc *script.Script) (Deliverer, error) {
	makersMu.RLock()
	mk := makers[d.Type]
	makersMu.RUnlock()
	if mk == nil {
		return nil, fmt.Errorf("destination %s: no destination type %q", d.Name, d.Type)
	}
	var env Env
	if d.TLS.CAFile != "" || d.TLS.CertFile != "" {
		var err error
		if env.TLS, err = mllp.ClientTLSConfig(d.TLS.CAFile, d.TLS.CertFile, d.TLS.KeyFile, ""); err != nil {
			return nil, err
		}
	}
	encode, err := NewEncoding(d, enc)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	dl, err := mk(d, env)
	if err != nil {
		return nil, err
	}
	return Encoded(dl, encode), nil
}
