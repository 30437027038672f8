package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A migration's messages are found by control ID and SHA-256: one the
// index learned from its HL7_IN record (catching up), one from its
// received event (live), and a replay of it; each delivered copy carries
// the SHA-256 of what its destination received. A digest that differs,
// or a listener out of scope, finds nothing; the latest refusal of a
// control ID answers for a message not stored.
func TestImportedFindsByControlIDAndDigest(t *testing.T) {
	ix := openTestIndex(t)
	ctx := context.Background()
	rec := record(1, t0) // CTL00000000, from HL7_IN
	live := synthetic(1) // CTL00000001, as its received event says
	liveSum := sumHex(live.Data)
	rcv := received(2, t0.Add(time.Second))
	rcv.ControlID, rcv.Type, rcv.Trigger, rcv.Size, rcv.SHA256 = "CTL00000001", "ADT", "A08", len(live.Data), liveSum
	replay := received(3, t0.Add(2*time.Second))
	replay.ControlID, replay.Type, replay.Trigger, replay.ReplayOf, replay.Size, replay.SHA256 = "CTL00000001", "ADT", "A08", "message 2", len(live.Data), liveSum
	sent := []byte("MSH|...as the EMR got it\r")
	d2 := delivered(2, t0.Add(1500*time.Millisecond), "emr")
	d2.SHA256 = sumHex(sent)
	dl := wire.Event{Kind: wire.EventDeadLettered, At: t0.Add(1600 * time.Millisecond), Message: 2, Destination: "lis", Attempt: 3, Reason: "gave up after 3 attempts"}
	d3 := delivered(3, t0.Add(2500*time.Millisecond), "lis")
	d3.SHA256 = liveSum
	refusal := wire.Event{Kind: wire.EventRefused, At: t0.Add(3 * time.Second), Listener: "lab", Ack: "AR", Code: "200", Reason: "message type not accepted", ControlID: "CTL-X"}
	require.NoError(t, ix.Apply(ctx, []Item{rec,
		eventsRecord(t, 1, received(1, t0), routed(1, t0, "emr")),
		eventsRecord(t, 2, rcv, routed(2, t0.Add(time.Second), "emr", "lis"), d2, dl, replay, routed(3, t0.Add(2*time.Second), "lis"), d3, refusal),
	}))

	found, err := ix.Imported(ctx, []Match{
		{ControlID: "CTL00000000", SHA256: sumHex(rec.Data)},
		{ControlID: "CTL00000001", SHA256: liveSum},
		{ControlID: "CTL00000001", SHA256: sumHex([]byte("other bytes"))},
		{ControlID: "CTL-X", SHA256: sumHex([]byte("refused"))},
	}, nil)
	require.NoError(t, err)
	require.Len(t, found, 4)
	require.Len(t, found[0].Messages, 1, "a message indexed from its record")
	assert.Equal(t, uint64(1), found[0].Messages[0].ID)
	assert.Equal(t, StatusQueued, found[0].Messages[0].Copies[0].Status)

	require.Len(t, found[1].Messages, 2, "the message and its replay, oldest first")
	first, again := found[1].Messages[0], found[1].Messages[1]
	assert.Equal(t, uint64(2), first.ID)
	assert.Equal(t, "message 2", again.ReplayOf)
	require.Len(t, first.Copies, 2)
	assert.Equal(t, ImportedCopy{Destination: "emr", Status: StatusDelivered, Attempts: 1, Code: "AA", SHA256: sumHex(sent)}, first.Copies[0])
	assert.Equal(t, StatusDeadLettered, first.Copies[1].Status)
	assert.Empty(t, first.Copies[1].SHA256, "no digest for a copy not delivered")
	assert.Equal(t, liveSum, again.Copies[0].SHA256)

	assert.Empty(t, found[2].Messages, "other bytes: not this message")
	assert.Nil(t, found[2].Refused, "a control ID never refused")
	assert.Empty(t, found[3].Messages)
	require.NotNil(t, found[3].Refused)
	assert.Equal(t, "AR", found[3].Refused.Ack)

	scoped, err := ix.Imported(ctx, []Match{{ControlID: "CTL00000001", SHA256: liveSum}}, []string{"adt"})
	require.NoError(t, err)
	assert.Empty(t, scoped[0].Messages, "a person limited to listener adt finds nothing of lab's")

	_, err = ix.Imported(ctx, []Match{{ControlID: "X", SHA256: "abc"}}, nil)
	assert.ErrorIs(t, err, ErrBadRequest)
	_, err = ix.Imported(ctx, make([]Match, MaxImported+1), nil)
	assert.ErrorIs(t, err, ErrBadRequest)
}
