package history

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// storeMessage stores message i in HL7_IN as ingest does, and returns
// its sequence and the received event ingest would record.
func storeMessage(t *testing.T, n *store.NATS, i int) (uint64, wire.Event) {
	t.Helper()
	it := synthetic(i)
	it.Header.Set(wire.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	ack, err := n.JetStream.PublishMsg(context.Background(), &nats.Msg{Subject: it.Subject, Header: it.Header, Data: it.Data})
	require.NoError(t, err)
	e := wire.Event{Kind: wire.EventReceived, At: time.Now(), Message: ack.Sequence, Listener: "lab", Ack: "AA",
		Keys: map[string][]string{"mrn": {fmt.Sprintf("FROM-EVENT-%d", i)}}}
	e.Head(it.Header, len(it.Data))
	return ack.Sequence, e
}

func startIndexer(t *testing.T, n *store.NATS, ix *Index) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Indexer{JetStream: n.JetStream, Index: ix, Log: zerolog.Nop(), GapWait: 300 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func waitIndexed(t *testing.T, ix *Index, id uint64, what string) Detail {
	t.Helper()
	var d Detail
	testkit.WaitFor(t, 10*time.Second, func() error {
		var err error
		if d, err = ix.Message(context.Background(), id); err != nil {
			return fmt.Errorf("message %d (%s) not in the index: %w", id, what, err)
		}
		return nil
	})
	return d
}

// Live, a message is indexed from its received event (summary and search
// keys) without its record being read; a message whose received event
// never comes is read from HL7_IN once later ones have come; what was
// stored before the indexer started is read from HL7_IN.
func TestIndexerLearnsFromEventsAndFillsGapsFromHL7IN(t *testing.T) {
	ctx := context.Background()
	c := testkit.Config(t)
	n, err := store.Open(ctx, c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "history.db"), map[string]string{"mrn": "PID-3.1"})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })

	before, _ := storeMessage(t, n, 0) // stored while no indexer ran; its event was lost
	events := store.NewEventLog(n.JetStream, zerolog.Nop())
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	go events.Run(ectx)
	startIndexer(t, n, ix)

	d := waitIndexed(t, ix, before, "stored before the indexer started")
	require.Equal(t, "CTL00000000", d.ControlID)
	page, err := ix.Search(ctx, Filter{Keys: map[string]string{"mrn": "MRN0000000"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "read from its record: the index read its search keys itself")

	live, e := storeMessage(t, n, 1)
	events.Record(e)
	d = waitIndexed(t, ix, live, "recorded live")
	require.Equal(t, "CTL00000001", d.ControlID)
	require.Equal(t, "ADT", d.Type, "the summary from the received event")
	page, err = ix.Search(ctx, Filter{Keys: map[string]string{"mrn": "FROM-EVENT-1"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "the search keys from the received event")
	require.NotContains(t, string(d.Journey[0]), "FROM-EVENT", "search key values stay out of the journey")

	lost, _ := storeMessage(t, n, 2) // its received event is lost
	later, e := storeMessage(t, n, 3)
	events.Record(e)
	waitIndexed(t, ix, later, "recorded live")
	d = waitIndexed(t, ix, lost, "its received event lost: read from HL7_IN")
	require.Equal(t, "CTL00000002", d.ControlID)
	require.Equal(t, StatusReceived, d.Status)

	pos, err := ix.Positions(ctx)
	require.NoError(t, err)
	testkit.WaitFor(t, 5*time.Second, func() error {
		if pos, err = ix.Positions(ctx); err != nil {
			return err
		}
		if pos[wire.StreamIn] != later {
			return errors.New("the HL7_IN position is not past every message indexed")
		}
		return nil
	})
}
