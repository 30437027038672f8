package testkit

import (
	"bytes"
	"context"
	"testing"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// ReadEvents reads every journey event stored in HL7_EVENTS, in order.
func ReadEvents(t testing.TB, js jetstream.JetStream) []wire.Event {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, wire.StreamEvents)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []wire.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		for line := range bytes.SplitSeq(bytes.TrimSpace(m.Data), []byte("\n")) {
			var e wire.Event
			require.NoError(t, wire.ParseEvent(line, &e))
			out = append(out, e)
		}
	}
	return out
}
