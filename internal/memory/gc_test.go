package memory

import (
	"runtime/debug"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
)

// Without GOGC the collector runs at DefaultGCPercent; GOGC, when set,
// wins and is left as the runtime read it.
func TestApplyGCPercentDefaultsUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	ApplyGCPercent(zerolog.Nop())
	assert.Equal(t, DefaultGCPercent, debug.SetGCPercent(100))

	t.Setenv("GOGC", "200")
	ApplyGCPercent(zerolog.Nop())
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: the pace is not touched")
}
