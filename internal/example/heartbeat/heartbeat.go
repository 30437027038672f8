// Package heartbeat is the worked example of a source type in
// docs/contributing.md: a whole source, with keys of its own, in one
// file. A "heartbeat" source stores a small test message every interval,
// so that a route and its destination can be watched end to end without a
// sender. It is linked only into its test; a real type lives in package
// ingest.
package heartbeat

import (
	"context"
	"fmt"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
)

// Options are the keys of type heartbeat, as a config file writes them.
type Options struct {
	Every       time.Duration `mapstructure:"every"`                      // how often; default 1m
	ProcessedAs string        `mapstructure:"processing_id" enum:"P,T,D"` // MSH-11; default T (training)
}

// The one registration: the type's name, keys (Options), check,
// defaults and constructor.
func init() {
	ingest.RegisterSource(ingest.SourceType[Options]{
		Name: "heartbeat",
		Check: func(o *Options, _ config.SourceConfig, key string, c *config.Checker) {
			if o.Every < time.Second {
				c.Add(key+".every", "must be at least 1s")
			}
		},
		Defaults: func(o *Options, _ *config.SourceConfig) {
			if o.Every == 0 {
				o.Every = time.Minute
			}
			if o.ProcessedAs == "" {
				o.ProcessedAs = "T"
			}
		},
		New: func(o *Options, s config.SourceConfig, env ingest.SourceEnv) (ingest.Source, error) {
			return &beat{opts: *o, name: s.Name, env: env}, nil
		},
	})
}

// beat is the Source: Run stores a message every interval until ctx ends,
// each through env.Ingest (which answers with the ACK a sender would get).
type beat struct {
	opts Options
	name string
	env  ingest.SourceEnv
	n    int
}

func (b *beat) Run(ctx context.Context) error {
	tick := time.NewTicker(b.opts.Every)
	defer tick.Stop()
	for {
		b.n++
		msg := fmt.Sprintf("MSH|^~\\&|HL7BROKER|%s|||%s||NMD^N02|HB-%d-%d|%s|2.5\rNST|1\r",
			b.name, time.Now().UTC().Format("20060102150405"), time.Now().Unix(), b.n, b.opts.ProcessedAs)
		out := b.env.Ingest.Receive(ctx, []byte(msg), ingest.Origin{})
		if out.Stored && b.env.Sync != nil {
			if err := b.env.Sync(ctx); err != nil {
				if ctx.Err() != nil {
					return nil // stopped: the message is stored, and flushed at shutdown
				}
				return err // the supervisor starts the source again
			}
		}
		if !out.Stored && out.Code != string(hl7.AA) {
			// Only codes and the source's name: a source logs no content.
			b.env.Log.Warn().Str("source", b.name).Str("code", out.Code).Msg("heartbeat not stored")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
