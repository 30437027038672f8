package feed

import (
	"bytes"
	"testing"

	"github.com/hl7broker/hl7broker/history"
	"github.com/stretchr/testify/assert"
)

// The totals of a reconciliation: a copy dead-lettered then delivered by
// a replay of its message counts as delivered (via the replay); a
// message stored twice, one refused, one invalid and one not found are
// each counted where they belong, and the totals add up.
func TestTotalsAddUp(t *testing.T) {
	copyOf := func(dest, status, sum string) history.ImportedCopy {
		return history.ImportedCopy{Destination: dest, Status: status, SHA256: sum}
	}
	acc := []Account{
		{Entry: Entry{Valid: true, SHA256: "s1"}, Found: &history.Imported{Messages: []history.ImportedMessage{
			{ID: 1, Copies: []history.ImportedCopy{copyOf("emr", history.StatusDelivered, "s1"), copyOf("lis", history.StatusDeadLettered, "")}},
			{ID: 9, ReplayOf: "message 1", Copies: []history.ImportedCopy{copyOf("lis", history.StatusDelivered, "t1")}}}}},
		{Entry: Entry{Valid: true, SHA256: "s2"}, Found: &history.Imported{Messages: []history.ImportedMessage{
			{ID: 2, Copies: []history.ImportedCopy{copyOf("emr", history.StatusQueued, "")}},
			{ID: 5, Copies: []history.ImportedCopy{copyOf("emr", history.StatusDelivered, "s2")}}}}},
		{Entry: Entry{Valid: true, SHA256: "s3"}, Found: &history.Imported{Messages: []history.ImportedMessage{{ID: 3, Unrouted: true, Status: history.StatusUnrouted}}}},
		{Entry: Entry{Valid: true, SHA256: "s4"}, Found: &history.Imported{Refused: &history.Refused{Ack: "AR"}}},
		{Entry: Entry{Valid: false, Problem: "101 MSH-9: required"}},
		{Entry: Entry{Valid: true, SHA256: "s6", Ack: "AA"}, Found: &history.Imported{}},
	}
	tt := Total(acc)
	assert.Equal(t, 6, tt.In)
	assert.Equal(t, 3, tt.Stored)
	assert.Equal(t, 1, tt.StoredTwice, "message 5 has the bytes of 2 and is no replay")
	assert.Equal(t, 1, tt.Unrouted)
	assert.Equal(t, []int{1, 1, 1}, []int{tt.Refused, tt.Invalid, tt.NotFound})
	assert.Equal(t, DestTotals{Copies: 2, Delivered: 2}, *tt.Destinations["emr"], "message 2's copy: delivered by message 5")
	assert.Equal(t, DestTotals{Copies: 1, Delivered: 1, Changed: 1}, *tt.Destinations["lis"], "delivered by the replay, as other bytes")
	assert.False(t, tt.OK())
	var out bytes.Buffer
	tt.Print(&out)
	assert.Contains(t, out.String(), "in 6 = stored 3 + not stored 3 (invalid, not sent 1; refused by the broker 1; not found 1)")
	assert.Contains(t, out.String(), "stored more than once (resent after the duplicate window): 1")
	assert.Contains(t, out.String(), "the totals add up")

	assert.False(t, settled(acc[5], false), "acknowledged AA but not found: the index may not hold it yet")
	assert.True(t, settled(acc[3], false), "refused")
	assert.False(t, settled(Account{Entry: Entry{Valid: true}, Found: &history.Imported{}}, true), "not found while the index is behind")
	assert.True(t, settled(Account{Entry: Entry{Valid: true}, Found: &history.Imported{}}, false), "not found, the index caught up")
	assert.True(t, settled(acc[1], false), "its queued copy was delivered by a later message")
	dead := Account{Entry: Entry{Valid: true}, Found: &history.Imported{Messages: []history.ImportedMessage{
		{ID: 7, Copies: []history.ImportedCopy{copyOf("emr", history.StatusDeadLettered, "")}}}}}
	assert.True(t, settled(dead, false), "a dead letter stays one until someone replays it")
	assert.False(t, settled(dead, true), "the index has yet to apply what may be its replay")
}
