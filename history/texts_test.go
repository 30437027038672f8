package history

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/wire"
)

// textItem is message id's bytes as the Indexer reads HL7_IN for content.
func textItem(id uint64, data string) Item {
	return Item{Stream: StreamTexts, Seq: id, Subject: wire.InSubject("lab", "ADT", "A01"), Header: nats.Header{}, Data: []byte(data)}
}

// With content search on, a search by words finds the messages holding
// all of them, in any field, without regard to case or accents, a word
// ending in * as a prefix, words in quotes as a phrase; alone or with
// other filters, newest first, page by page; what FTS5 would read as
// syntax is taken as words; pruning removes the words of pruned messages.
func TestContentSearch(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"}, IndexOptions{Content: true})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	ctx := context.Background()
	bodies := map[uint64]string{
		1: "MSH|^~\\&|REG|H|EMR|H|20261201||ADT^A01|C1|P|2.5\rPID|1||M1^^^H||NGUYỄN^Văn||19700101|M\rPV1|1|I|WARD^12\r",
		2: "MSH|^~\\&|REG|H|EMR|H|20261201||ADT^A08|C2|P|2.5\rPID|1||M2^^^H||Nguyen^Anh\r",
		3: "MSH|^~\\&|LAB|H|EMR|H|20261201||ORU^R01|C3|P|2.5\rPID|1||M3^^^H||Smith^Ann\rOBX|1|ST|GLU^Glucose||high glucose level\r",
		4: "MSH|^~\\&|LAB|H|EMR|H|20261201||ORU^R01|C4|P|2.5\rPID|1||M4^^^H||Nguyenova^Eva\rOBX|1|ST|NOTE||glucose high\r",
	}
	var items []Item
	for id := uint64(1); id <= 4; id++ {
		items = append(items, record(int(id), t0.Add(time.Duration(id)*time.Second)), textItem(id, bodies[id]),
			eventsRecord(t, id, received(id, t0), routed(id, t0.Add(time.Millisecond), "emr")))
	}
	require.NoError(t, ix.Apply(ctx, items))
	require.NoError(t, ix.Apply(ctx, []Item{textItem(2, bodies[2])}), "a message's words applied again")
	ids := func(f Filter) []string {
		t.Helper()
		page, err := ix.Search(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, s := range page.Items {
			out = append(out, s.ID)
		}
		return out
	}
	assert.Equal(t, []string{"2", "1"}, ids(Filter{Text: "nguyen"}), "case and accents ignored, newest first")
	assert.Equal(t, []string{"4", "2", "1"}, ids(Filter{Text: "NGU*"}))
	assert.Equal(t, []string{"4", "3"}, ids(Filter{Text: "glucose high"}), "every word, in any order")
	assert.Equal(t, []string{"3"}, ids(Filter{Text: `"high glucose"`}), "a phrase")
	assert.Equal(t, []string{"1"}, ids(Filter{Text: "ward 12"}), "components are words")
	assert.Empty(t, ids(Filter{Text: "nguyen glucose"}))
	assert.Equal(t, []string{"1"}, ids(Filter{Text: "nguyen", Keys: map[string]string{"mrn": "MRN0000000"}}), "with a search key leading")
	assert.Equal(t, []string{"1"}, ids(Filter{Text: "nguyen", Cursor: "2"}), "a page after id 2: below it")
	page, err := ix.Search(ctx, Filter{Text: "ngu*", Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, "2", page.NextCursor)
	assert.Equal(t, []string{"1"}, ids(Filter{Text: "ngu*", Cursor: page.NextCursor}))
	assert.Equal(t, []string{"2", "1"}, ids(Filter{Text: "nguyen", Destination: "emr"}), "with a destination")
	assert.Equal(t, []string{"4"}, ids(Filter{Text: "glucose", Type: "ORU", Status: StatusQueued}), "with a type and a status (the records say 1 and 4 are ORUs)")
	for _, hostile := range []string{`nguyen OR smith`, `NEAR(nguyen smith)`, `body:nguyen`, `nguyen"`, `-smith`, `^nguyen`, `(nguyen`} {
		_, err := ix.Search(ctx, Filter{Text: hostile})
		if err != nil {
			var qe *QueryError
			assert.ErrorAs(t, err, &qe, "%s: a question of the query, never of FTS5", hostile)
		}
	}
	_, err = ix.Search(ctx, Filter{Text: "*** ---"})
	var qe *QueryError
	assert.ErrorAs(t, err, &qe, "no word")

	require.NoError(t, ix.Prune(ctx, 3, 1, 1))
	assert.Equal(t, []string{"4"}, ids(Filter{Text: "ngu*"}))
	var n int
	require.NoError(t, ix.r.QueryRow(`SELECT count(*) FROM texts WHERE rowid < 3`).Scan(&n))
	assert.Zero(t, n, "the words of pruned messages are gone")
}

// Without content search, a search by words is refused with why.
func TestContentSearchOff(t *testing.T) {
	ix := openTestIndex(t)
	_, err := ix.Search(context.Background(), Filter{Text: "nguyen"})
	assert.ErrorIs(t, err, ErrNoContentSearch)
}

// What a person types becomes words, prefixes and phrases, never FTS5
// syntax.
func TestFTSQuery(t *testing.T) {
	for typed, want := range map[string]string{
		"nguyen":            `"nguyen"`,
		"ngu* anh":          `"ngu"* "anh"`,
		`"glucose high" M1`: `"glucose high" "M1"`,
		`nguyen OR smith`:   `"nguyen" "OR" "smith"`,
		`NEAR(a b)`:         `"NEAR a" "b"`,
		`body:x`:            `"body x"`,
		`MRN-123^^^HOSP`:    `"MRN 123 HOSP"`,
		`o"brien`:           `"o brien"`,
		`Nguyễn`:            `"Nguyễn"`,
	} {
		got, err := ftsQuery(typed)
		require.NoError(t, err, typed)
		assert.Equal(t, want, got, typed)
	}
	for _, bad := range []string{"", "  ", "*", `"unclosed`, "- ^ |"} {
		_, err := ftsQuery(bad)
		assert.Error(t, err, bad)
	}
}
