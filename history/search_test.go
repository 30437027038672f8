package history

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Names are found whatever their case and accents, and by their start;
// each result carries its key values as the message has them and its
// last error; pages come newest first, every message once; a time range
// holds exactly the messages received in it.
func TestSearchFindsPeopleAndPagesInOrder(t *testing.T) {
	const n = 4000
	ix := buildVaried(t, filepath.Join(t.TempDir(), "history.db"), n, map[string]string{"mrn": "PID-3.1", "family": "PID-5.1"}, "family")
	defer ix.Close()
	ctx := context.Background()
	want := func(match func(family string) bool) []string { // ids newest first
		var ids []string
		for i := n - 1; i >= 0; i-- {
			if match(variedFamily(i)) {
				ids = append(ids, strconv.Itoa(i+1))
			}
		}
		return ids
	}
	all := func(f Filter) ([]string, []Summary) {
		t.Helper()
		var ids []string
		var items []Summary
		f.Limit = 70
		for {
			p, err := ix.Search(ctx, f)
			require.NoError(t, err)
			for _, s := range p.Items {
				ids = append(ids, s.ID)
				items = append(items, s)
			}
			if p.NextCursor == "" {
				return ids, items
			}
			f.Cursor = p.NextCursor
		}
	}
	nguyen := want(func(f string) bool { return f == "Nguyễn" || f == "NGUYEN" })
	require.NotEmpty(t, nguyen)
	for _, q := range []string{"nguyen", "Nguyễn", "NGUYEN", "ngu*", "NGUY*", "nguyễ*"} {
		got, items := all(Filter{Keys: map[string]string{"family": q}})
		assert.Equal(t, nguyen, got, "family=%s", q)
		for _, s := range items {
			assert.Contains(t, []string{"Nguyễn", "NGUYEN"}, s.Keys["family"], "shown as the message has it")
			assert.NotEmpty(t, s.Keys["mrn"])
		}
	}
	got, _ := all(Filter{Keys: map[string]string{"family": "gar*"}})
	assert.Equal(t, want(func(f string) bool { return f == "Garcia" || f == "García" }), got)
	got, _ = all(Filter{Keys: map[string]string{"family": "mu*", "mrn": "MRN0000025"}})
	assert.Equal(t, []string{"26"}, got, "two keys: both must match (message 26 is Müller's, MRN0000025)")
	got, _ = all(Filter{Keys: map[string]string{"family": "k*"}})
	assert.Equal(t, want(func(f string) bool { return f == "Kim" || f == "Kowalski" }), got, "a prefix of two names: each walked, merged newest first")
	got, _ = all(Filter{Keys: map[string]string{"mrn": "MRN00000*"}}) // 100 values: more than are walked one by one
	var first100 []string
	for i := 100; i >= 1; i-- {
		first100 = append(first100, strconv.Itoa(i))
	}
	assert.Equal(t, first100, got)
	got, _ = all(Filter{Keys: map[string]string{"family": "n*"}, Status: StatusDeadLettered}) // nguyen and novak
	var deadK []string                                                                        // emr refused every hundredth message, counting from 1
	for i := n - 1; i >= 0; i-- {
		if f := variedFamily(i); (f == "Nguyễn" || f == "NGUYEN" || f == "Novák") && i%100 == 1 {
			deadK = append(deadK, strconv.Itoa(i+1))
		}
	}
	require.NotEmpty(t, deadK)
	assert.Equal(t, deadK, got, "other filters apply to every value walked")
	got, _ = all(Filter{Keys: map[string]string{"mrn": "mrn0000025"}})
	assert.Empty(t, got, "a key that does not fold matches exactly")

	got, items := all(Filter{Status: StatusDeadLettered})
	require.NotEmpty(t, got)
	assert.True(t, slices.IsSortedFunc(got, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return y - x }), "newest first")
	for _, s := range items {
		assert.Equal(t, "rejected: AR", s.LastError)
	}

	from, to := SyntheticStart.Add(100*300*time.Millisecond), SyntheticStart.Add(250*300*time.Millisecond)
	got, _ = all(Filter{From: from, To: to})
	var inRange []string
	for i := 249; i >= 100; i-- {
		inRange = append(inRange, strconv.Itoa(i+1))
	}
	assert.Equal(t, inRange, got, "exactly the messages received in [from, to)")
}
