package delivery

import (
	"crypto/tls"
	"fmt"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/mllp"
)

// Type is one kind of destination, defined in one file: what the config
// knows of it (name, keys, checks, defaults) and how to make a Deliverer
// for one destination of it.
type Type struct {
	config.DestinationType
	// New makes a Deliverer for destination d, already validated. Each
	// delivery slot gets its own (see Destination.NewDeliverer).
	New func(d config.DestinationConfig, env Env) (Deliverer, error)
}

// Env is what a Type's New gets besides the destination's config.
type Env struct {
	TLS *tls.Config // from the destination's tls keys; nil without them
}

// Types are the kinds of destination. A new kind is a file defining its
// Type and one line here (docs/contributing.md).
var Types = []Type{
	mllpType,
	httpType,
	fileType,
	postgresType,
	sftpType,
	fhirType,
}

func init() {
	for _, t := range Types {
		config.RegisterDestinationType(t.DestinationType)
	}
}

// New makes a Deliverer for destination d by its type: its TLS files
// loaded, and the copies encoded as d asks (JSON, or ER7 with its segment
// terminator).
func New(d config.DestinationConfig) (Deliverer, error) {
	var t *Type
	for i := range Types {
		if Types[i].Name == d.Type {
			t = &Types[i]
		}
	}
	if t == nil {
		return nil, fmt.Errorf("destination %s: no destination type %q", d.Name, d.Type)
	}
	var env Env
	if d.TLS.CAFile != "" || d.TLS.CertFile != "" {
		var err error
		if env.TLS, err = mllp.ClientTLSConfig(d.TLS.CAFile, d.TLS.CertFile, d.TLS.KeyFile, ""); err != nil {
			return nil, err
		}
	}
	enc, err := NewEncoding(d)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	dl, err := t.New(d, env)
	if err != nil {
		return nil, err
	}
	return Encoded(dl, enc), nil
}
