package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A group is routed in runs that leave no input out: a gap anywhere in it
// (after redeliveries of older inputs, say) ends the run, so that the
// router takes over what is missing before routing past it.
func TestRunWithoutGap(t *testing.T) {
	for _, tc := range []struct {
		seqs      []uint64
		next      uint64
		k         int
		end       uint64
		situation string
	}{
		{[]uint64{5, 6, 7}, 5, 3, 8, "in order"},
		{[]uint64{2, 3, 5, 6}, 5, 4, 7, "redeliveries of routed inputs, then the next ones"},
		{[]uint64{2, 3, 9, 10}, 5, 2, 5, "redeliveries, then a gap: 5 to 8 went elsewhere"},
		{[]uint64{5, 7}, 5, 1, 6, "a gap inside"},
		{[]uint64{9}, 5, 1, 10, "alone: the caller took over first"},
	} {
		k, end := runWithoutGap(tc.seqs, tc.next)
		assert.Equal(t, tc.k, k, tc.situation)
		assert.Equal(t, tc.end, end, tc.situation)
	}
}
