package config

import (
	"fmt"

	"github.com/hl7broker/hl7broker/wire"
)

// FitPayload checks each listener's and source's max_message_bytes against the NATS
// server's max_payload. A listener that left the key to its default gets
// the largest limit that fits instead (defaults must work against a
// cluster with NATS's defaults); one that set it gets a problem naming
// the key.
func (c *Config) FitPayload(maxPayload int64, embedded bool) []Problem {
	var problems []Problem
	limit := int(maxPayload - wire.HeaderRoom)
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
				l.MaxMessageBytes, wire.HeaderRoom, maxPayload, how)})
	}
	for i := range c.Sources {
		src := &c.Sources[i]
		if src.MaxMessageBytes <= limit {
			continue
		}
		if src.MaxMessageBytes == DefaultMaxMessageBytes && limit >= 1024 {
			src.MaxMessageBytes = limit // the default shrinks to fit, as a listener's does
			continue
		}
		problems = append(problems, Problem{Key: fmt.Sprintf("sources[%d].max_message_bytes", i),
			Message: fmt.Sprintf("%d bytes plus %d for headers does not fit the NATS server's max_payload of %d bytes",
				src.MaxMessageBytes, wire.HeaderRoom, maxPayload)})
	}
	return c.rewriteKeys(problems)
}
