package broker

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// HeaderRoom is what a stored message may need beside its bytes for its
// headers (ingest's, the router's, the dead-letter queue's). A listener's
// max_message_bytes plus this must fit NATS's max_payload, or a message
// the listener accepts could never be stored: the sender would be told to
// resend it forever.
const HeaderRoom = 64 << 10

// minPayload is NATS's own default max_payload (1 MiB).
const minPayload = 1 << 20

// embeddedMaxPayload is the embedded server's max_payload: room for the
// largest message any listener accepts.
func embeddedMaxPayload(c *Config) int32 {
	largest := 0
	for _, l := range c.Listeners {
		largest = max(largest, l.MaxMessageBytes)
	}
	return int32(max(minPayload, largest+HeaderRoom))
}

// fitPayload checks each listener's max_message_bytes against the NATS
// server's max_payload. A listener that left the key to its default gets
// the largest limit that fits instead (defaults must work against a
// cluster with NATS's defaults); one that set it gets a problem naming
// the key.
func (c *Config) fitPayload(maxPayload int64, embedded bool) []Problem {
	var problems []Problem
	limit := int(maxPayload - HeaderRoom)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.MaxMessageBytes <= limit {
			continue
		}
		if l.maxBytesDefaulted && limit >= 1024 {
			l.MaxMessageBytes = limit
			continue
		}
		how := "raise max_payload on the NATS servers, or lower this"
		if embedded {
			how = "the embedded server's max_payload is set when serve starts: restart to apply"
		}
		problems = append(problems, Problem{Key: fmt.Sprintf("listeners[%d].max_message_bytes", i),
			Message: fmt.Sprintf("%d bytes plus %d for headers does not fit the NATS server's max_payload of %d bytes: %s",
				l.MaxMessageBytes, HeaderRoom, maxPayload, how)})
	}
	return problems
}

// MaxPayload is the largest message, headers included, the NATS server
// takes.
func (n *NATS) MaxPayload() int64 { return n.Conn.MaxPayload() }

// CheckNATS connects to an external cluster (nats.url set) and checks
// that every listener's messages fit its max_payload, as serve does. With
// the embedded server there is nothing to check: serve sizes it. An
// unreachable cluster is an error, not a problem of the config.
func CheckNATS(file string, c *Config) error {
	if c.NATS.URL == "" {
		return nil
	}
	n := &NATS{closed: make(chan struct{})}
	if err := n.connectExternal(c, nats.Timeout(3*time.Second), nats.MaxReconnects(0)); err != nil {
		return err
	}
	defer n.Conn.Close()
	if problems := c.fitPayload(n.MaxPayload(), false); len(problems) > 0 {
		return newConfigError(file, problems)
	}
	return nil
}
