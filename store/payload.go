package store

import (
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
)

// minPayload is NATS's own default max_payload (1 MiB).
const minPayload = 1 << 20

// embeddedMaxPayload is the embedded server's max_payload: room for the
// largest message any listener or source accepts.
func embeddedMaxPayload(c *config.Config) int32 {
	largest := 0
	for _, l := range c.Listeners {
		largest = max(largest, l.MaxMessageBytes)
	}
	for _, s := range c.Sources {
		largest = max(largest, s.MaxMessageBytes)
	}
	return int32(max(minPayload, largest+wire.HeaderRoom))
}

// MaxPayload is the largest message, headers included, the NATS server
// takes.
func (n *NATS) MaxPayload() int64 { return n.Conn.MaxPayload() }

// CheckNATS connects to an external cluster (nats.url set) and checks
// that every listener's messages fit its max_payload, as serve does. With
// the embedded server there is nothing to check: serve sizes it. An
// unreachable cluster is an error, not a problem of the config.
func CheckNATS(file string, c *config.Config) error {
	if c.NATS.URL == "" {
		return nil
	}
	n := &NATS{closed: make(chan struct{})}
	if err := n.connectExternal(c, nats.Timeout(3*time.Second), nats.MaxReconnects(0)); err != nil {
		return err
	}
	defer n.Conn.Close()
	if problems := c.FitPayload(n.MaxPayload(), false); len(problems) > 0 {
		return config.NewError(file, problems)
	}
	return nil
}
