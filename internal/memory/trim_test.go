package memory

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Memory goes back to the OS only when the broker is quiet and holds
// enough free heap; never on the first look, never while busy.
func TestMemTrimmerFreesOnlyWhenIdle(t *testing.T) {
	var allocated, heldFree uint64
	freed := 0
	m := &Trimmer{read: func() (uint64, uint64) { return allocated, heldFree }, free: func() { freed++ }}

	allocated, heldFree = 500<<20, 64<<20
	require.False(t, m.tick(), "first look: nothing to compare with")
	allocated += 200 << 20
	require.False(t, m.tick(), "busy: 200 MB allocated since the last look")
	allocated += 100 << 10
	require.True(t, m.tick(), "quiet, 64 MB free but held")
	heldFree = trimFreeBytes / 2
	allocated += 100 << 10
	require.False(t, m.tick(), "quiet, but little to give back")
	require.Equal(t, 1, freed)

	real := NewTrimmer()
	a, _ := real.read()
	require.Positive(t, a, "the runtime's metrics are read")
}
