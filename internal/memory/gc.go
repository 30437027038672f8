package memory

import (
	"os"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// DefaultGCPercent is the collector's pace serve sets when GOGC is not in
// the environment. Go's own 100 lets the heap grow to twice what is live
// before collecting; under a sustained load the broker keeps some 130 MB
// live (the store's block caches, the resend window), so 100 peaks near
// 350 MB of RSS and 50 near 260 MB, at the same intake rate within the
// machine's noise (docs/benchmarks-log.md, 2026-12-07).
const DefaultGCPercent = 50

// ApplyGCPercent sets the collector's pace to DefaultGCPercent unless
// GOGC is set (which wins, GOGC=off included), and logs the choice.
func ApplyGCPercent(log zerolog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		log.Info().Str("gogc", v).Msg("memory: collector pace from GOGC")
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
	log.Info().Int("gogc", DefaultGCPercent).Msg("memory: the collector runs when the heap grows by half what is live (GOGC overrides)")
}
