// Package logging builds the logger of a process (hl7broker serve, and
// the tools that log): a level, and lines as JSON (for a log collector)
// or as console text (for a person). Production code of cmd/hl7broker.
package logging

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// New is a logger writing to w at level (debug, info, warn, error) in
// format: "json", "console", or "auto" (json when forService, else
// console). Writes are serialised: connections log from goroutines of
// their own.
func New(w io.Writer, level, format string, forService bool) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	w = zerolog.SyncWriter(w)
	if format == "auto" {
		format = map[bool]string{true: "json", false: "console"}[forService]
	}
	switch format {
	case "console":
		w = zerolog.ConsoleWriter{Out: w, NoColor: true, TimeFormat: "15:04:05.000"}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format must be console, json or auto")
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
