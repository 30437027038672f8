package feed

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msg(id string) string {
	return "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20261207120000||ADT^A08|" + id + "|P|2.5.1\rPID|1||MRN" + id + "^^^H^MR||Zyxwquist^Ann\r"
}

// A file's valid messages are sent in order over MLLP, each ACK checked
// (an invalid one is not sent); a run started again with the same state
// sends none of them twice.
func TestSenderFeedsInOrderAndResumes(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := &mllp.Server{Handler: mllp.HandlerFunc(func(_ context.Context, _ *mllp.ConnInfo, frame []byte) []byte {
		var m hl7.Message
		if m.ParseWith(frame, hl7.DefaultLimits) != nil {
			return nil
		}
		mu.Lock()
		got = append(got, m.ControlID())
		mu.Unlock()
		return hl7.BuildAck(&m, hl7.AckOptions{Outcome: hl7.Accepted})
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	file := msg("F1") + "PID|1||no MSH\r" + msg("F2") + msg("F3")
	state := filepath.Join(t.TempDir(), "import.state")
	run := func() *Sender {
		s, err := NewSender(Options{To: l.Addr().String(), Timeout: 5 * time.Second, StatePath: state})
		require.NoError(t, err)
		sv := ingest.NewSurveyor(ingest.New(config.ListenerConfig{Name: "import", MaxMessageBytes: config.DefaultMaxMessageBytes}, nil, zerolog.Nop()))
		msgs, valid := sv.File("batch.hl7", []byte(file))
		require.NoError(t, s.File(context.Background(), "batch.hl7", []byte(file), msgs, valid))
		s.Close()
		return s
	}
	first := run()
	assert.Equal(t, []string{"F1", "F2", "F3"}, got, "the valid messages, in order")
	assert.Equal(t, 3, first.Sent)
	assert.Zero(t, first.Refused)

	again := run()
	assert.Equal(t, []string{"F1", "F2", "F3"}, got, "nothing sent twice")
	assert.Zero(t, again.Sent)
	assert.Positive(t, again.Skipped)

	_, err = NewSender(Options{To: "http://127.0.0.1:1/hl7", StatePath: state})
	assert.ErrorContains(t, err, "bearer token", "an HTTP source needs its token")
}
