// Package logdest is the worked example of docs/contributing.md: a whole
// destination type, with keys of its own, in one file. A "log"
// destination appends a line per message to a ledger file: its number in
// the history, its control ID and its size, never its content. It is
// linked only into its test; a real type lives in package delivery.
package logdest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
)

// Options are the keys of type log, as a config file writes them.
type Options struct {
	Path   string `mapstructure:"path"`                   // the ledger file, appended to
	Format string `mapstructure:"format" enum:"text,tsv"` // checked by its enum tag
}

// The one registration line: the type's name, keys (Options), check,
// defaults and constructor.
func init() {
	delivery.Register(delivery.Type[Options]{
		Name:      "log",
		Encodings: []string{"er7"},
		Check: func(o *Options, _ config.DestinationConfig, key string, c *config.Checker) {
			if o.Path == "" || !filepath.IsAbs(o.Path) {
				c.Add(key+".path", "a log destination needs the ledger file's absolute path")
			}
		},
		Defaults: func(o *Options, _ *config.DestinationConfig) {
			if o.Format == "" {
				o.Format = "text"
			}
		},
		New: func(o *Options, d config.DestinationConfig, _ delivery.Env) (delivery.Deliverer, error) {
			return &ledger{path: o.Path, format: o.Format}, nil
		},
	})
}

// ledger is the Deliverer: called once per attempt, never concurrently
// for a fifo destination.
type ledger struct {
	path, format string
	mu           sync.Mutex
}

func (l *ledger) Deliver(_ context.Context, m delivery.Message) delivery.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		// A reason holds what went wrong, never message content.
		return delivery.Result{Outcome: delivery.Retry, Reason: err.Error()}
	}
	defer f.Close()
	line := fmt.Sprintf("message %d control_id=%s bytes=%d\n", m.InSeq, m.ControlID, len(m.Data))
	if l.format == "tsv" {
		line = fmt.Sprintf("%d\t%s\t%d\n", m.InSeq, m.ControlID, len(m.Data))
	}
	if _, err := f.WriteString(line); err != nil {
		return delivery.Result{Outcome: delivery.Retry, Reason: err.Error()}
	}
	return delivery.Result{Outcome: delivery.Delivered}
}

func (l *ledger) Close() error { return nil }
