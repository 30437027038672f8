package ingest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/mllp"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ingestServer runs an Ingest for listener l on 127.0.0.1:0 over a fresh
// embedded JetStream, and returns a client to it and the NATS handle.
func ingestServer(t *testing.T, l config.ListenerConfig, log zerolog.Logger) (*mllp.Client, *store.NATS) {
	t.Helper()
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = config.DefaultMaxMessageBytes
	}
	return serveIngest(t, l, n.Committer(2*time.Second), log), n // short: a stopped store must fail within the client's reply wait
}

// serveIngest runs an Ingest for l storing through c on 127.0.0.1:0 and
// returns a client to it.
func serveIngest(t *testing.T, l config.ListenerConfig, c store.Committer, log zerolog.Logger) *mllp.Client {
	t.Helper()
	in := New(l, c, log)
	srv := &mllp.Server{Name: l.Name, Handler: in, MaxFrameBytes: l.MaxMessageBytes}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &mllp.Client{Addr: ln.Addr().String(), ReplyTimeout: 10 * time.Second}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func send(t *testing.T, c *mllp.Client, msg string) *hl7.Ack {
	t.Helper()
	reply, err := c.Send(context.Background(), []byte(msg))
	require.NoError(t, err)
	ack, err := hl7.ParseAck(reply)
	require.NoError(t, err)
	return ack
}

func streamCount(t *testing.T, n *store.NATS) uint64 {
	t.Helper()
	s, err := n.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

const adt = testkit.ADT

func TestIngestStoresThenAcks(t *testing.T) {
	client, n := ingestServer(t, config.ListenerConfig{Name: "adt"}, zerolog.Nop())
	ack := send(t, client, adt)
	assert.Equal(t, hl7.AA, ack.Code)
	assert.Equal(t, "MSG00001", ack.ControlID)

	// The ACK came after the PubAck: the message is already there.
	s, err := n.JetStream.Stream(context.Background(), wire.StreamIn)
	require.NoError(t, err)
	msg, err := s.GetLastMsgForSubject(context.Background(), "hl7.in.adt.ADT.A01")
	require.NoError(t, err)
	assert.Equal(t, adt, string(msg.Data), "stored byte for byte")
	for k, want := range map[string]string{
		wire.HeaderControlID: "MSG00001", wire.HeaderSendingApp: "REGADT", wire.HeaderSendingFac: "MCM", wire.HeaderType: "ADT",
		wire.HeaderEvent: "A01", wire.HeaderVersion: "2.5.1", wire.HeaderListener: "adt",
	} {
		assert.Equal(t, want, msg.Header.Get(k), k)
	}
	assert.True(t, strings.HasPrefix(msg.Header.Get(wire.HeaderRemoteAddr), "127.0.0.1:"))
	_, err = time.Parse(time.RFC3339Nano, msg.Header.Get(wire.HeaderReceivedAt))
	assert.NoError(t, err)
	assert.True(t, strings.HasPrefix(msg.Header.Get("Nats-Msg-Id"), "adt:"))
}

func TestIngestDuplicateResendStoredOnceAckedTwice(t *testing.T) {
	client, n := ingestServer(t, config.ListenerConfig{Name: "adt"}, zerolog.Nop())
	assert.Equal(t, hl7.AA, send(t, client, adt).Code)
	assert.Equal(t, hl7.AA, send(t, client, adt).Code, "a resend is acknowledged again")
	assert.EqualValues(t, 1, streamCount(t, n), "and stored once")
	other := strings.Replace(adt, "MSG00001", "MSG00002", 1)
	assert.Equal(t, hl7.AA, send(t, client, other).Code)
	assert.EqualValues(t, 2, streamCount(t, n))
}

// A different message that reuses a sender's control ID inside the
// duplicate window is a new message: stored, acknowledged, counted as a
// reuse and logged without content. Only the same bytes again are a resend.
func TestIngestControlIDReuseIsStoredNotDropped(t *testing.T) {
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	logs := &syncbuf.Buffer{}
	l := config.ListenerConfig{Name: "adt", MaxMessageBytes: config.DefaultMaxMessageBytes}
	in := New(l, n.Committer(5*time.Second), zerolog.New(logs))
	reused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reused"}, []string{"source"})
	in.Reuse = NewReuseTracker(c.NATS.DuplicateWindow)
	in.Metrics = &Metrics{Received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "received"}, []string{"source"}),
		Acks:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acks"}, []string{"source", "code"}),
		StoreSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "store"}, []string{"source"}), ReusedIDs: reused}
	srv := &mllp.Server{Name: l.Name, Handler: in}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &mllp.Client{Addr: ln.Addr().String()}
	t.Cleanup(func() { _ = client.Close() })

	fixed := strings.Replace(adt, "Müller^José", "Mueller^Jose", 1) // a corrected message, same MSH-10
	retimed := strings.Replace(adt, "20260114081530", "20260114081531", 1)
	assert.Equal(t, hl7.AA, send(t, client, adt).Code)
	assert.Equal(t, hl7.AA, send(t, client, fixed).Code)
	assert.Equal(t, hl7.AA, send(t, client, adt).Code, "a true resend")
	assert.Equal(t, hl7.AA, send(t, client, retimed).Code, "only MSH-7 differs")
	assert.EqualValues(t, 3, streamCount(t, n), "the original, the corrected message and the retimed resend are stored; the true resend once")
	assert.Equal(t, 2.0, testutil.ToFloat64(reused.WithLabelValues("adt")), "two reuses: the corrected and the retimed message")
	assert.Contains(t, logs.String(), "control ID reused")
	assert.Contains(t, logs.String(), `"control_id":"MSG00001"`)
	assert.NotContains(t, logs.String(), "Mueller", "no content in the log")
}

func TestIngestAckPolicy(t *testing.T) {
	enhanced := withAckRequest(adt)
	tests := []struct {
		name     string
		msg      string
		original hl7.AckCode
		errCode  hl7.ErrorCode
		location string
	}{
		{"unparseable bytes", "this is not HL7\r", hl7.AR, hl7.CodeSegmentSequence, ""},
		{"bad encoding characters", strings.Replace(adt, "^~\\&", "&&&&", 1), hl7.AR, hl7.CodeDataType, "MSH^1^2"},
		{"missing MSH-9", strings.Replace(adt, "ADT^A01^ADT_A01", "", 1), hl7.AR, hl7.CodeRequiredFieldMissing, "MSH^1^9^^1"},
		{"missing MSH-10", strings.Replace(adt, "MSG00001", "", 1), hl7.AR, hl7.CodeRequiredFieldMissing, "MSH^1^10"},
		{"missing MSH-12", strings.Replace(adt, "|2.5.1\r", "|\r", 1), hl7.AR, hl7.CodeRequiredFieldMissing, "MSH^1^12^^1"},
		{"type not accepted", strings.Replace(adt, "ADT^A01^ADT_A01", "ORU^R01^ORU_R01", 1), hl7.AR, hl7.CodeUnsupportedType, "MSH^1^9^^1"},
		{"too large", "MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1|P|2.5\rNTE|1||" + strings.Repeat("x", 4096) + "\r", hl7.AR, hl7.CodeInternal, ""},
	}
	client, n := ingestServer(t, config.ListenerConfig{Name: "adt", AcceptTypes: []string{"ADT"}, MaxMessageBytes: 2048}, zerolog.Nop())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []string{"original", "enhanced"} {
				msg := tt.msg
				want := tt.original
				if mode == "enhanced" {
					msg = withAckRequest(msg)
					if tt.name != "unparseable bytes" && tt.name != "bad encoding characters" {
						want = hl7.CR
					}
				}
				ack := send(t, client, msg)
				assert.Equal(t, want, ack.Code, mode)
				require.NotEmpty(t, ack.Errors, mode)
				assert.Equal(t, tt.errCode, ack.Errors[0].Code, mode)
				if tt.location != "" {
					assert.Equal(t, tt.location, ack.Errors[0].Location, mode)
				}
				assert.NotEmpty(t, ack.Text, mode)
			}
		})
	}
	assert.EqualValues(t, 0, streamCount(t, n), "nothing rejected was stored")
	assert.Equal(t, hl7.CA, send(t, client, enhanced).Code, "enhanced mode accept")
}

// withAckRequest sets MSH-15 and MSH-16 (AL, NE) on a '|'-separated
// message, asking for enhanced-mode acknowledgements.
func withAckRequest(msg string) string {
	header, rest, _ := strings.Cut(msg, "\r")
	if strings.Count(header, "|") > 13 {
		return msg
	}
	header += strings.Repeat("|", 13-strings.Count(header, "|")) + "|AL|NE"
	return header + "\r" + rest
}

func TestIngestStoreFailureIsNeverAA(t *testing.T) {
	client, n := ingestServer(t, config.ListenerConfig{Name: "adt"}, zerolog.Nop())
	assert.Equal(t, hl7.AA, send(t, client, adt).Code)
	n.Server().Shutdown() // storage gone: the real failure, not a mock
	n.Server().WaitForShutdown()
	for _, msg := range []string{strings.Replace(adt, "MSG00001", "MSG00003", 1), withAckRequest(strings.Replace(adt, "MSG00001", "MSG00004", 1))} {
		ack := send(t, client, msg)
		assert.Contains(t, []hl7.AckCode{hl7.AE, hl7.CE}, ack.Code, "the sender is told to resend")
		require.NotEmpty(t, ack.Errors)
		assert.Equal(t, hl7.CodeInternal, ack.Errors[0].Code)
		assert.Contains(t, ack.Text, "resend")
	}
}

func TestIngestLogsHoldNoPHI(t *testing.T) {
	var logs syncbuf.Buffer
	client, n := ingestServer(t, config.ListenerConfig{Name: "adt", AcceptTypes: []string{"ADT"}}, zerolog.New(&logs).Level(zerolog.DebugLevel))
	send(t, client, adt)
	send(t, client, strings.Replace(adt, "ADT^A01", "ORU^R01", 1))
	send(t, client, strings.Replace(adt, "^~\\&", "&&&&", 1))
	n.Server().Shutdown()
	send(t, client, strings.Replace(adt, "MSG00001", "MSG00009", 1))
	out := logs.String()
	assert.Contains(t, out, "MSG00001", "control IDs are logged")
	for _, phi := range []string{"Müller", "José", "MRN1"} {
		assert.NotContains(t, out, phi)
	}
}

func TestOpenNATSReopensTheStore(t *testing.T) {
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	_, err = n.JetStream.Publish(context.Background(), "hl7.in.adt.ADT.A01", []byte(adt))
	require.NoError(t, err)
	n.Close()
	n2, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	defer n2.Close()
	assert.EqualValues(t, 1, streamCount(t, n2), "what was stored survives a restart")
	for _, name := range []string{wire.StreamIn, wire.StreamOut, wire.StreamDLQ} {
		s, err := n2.JetStream.Stream(context.Background(), name)
		require.NoError(t, err, name)
		info, _ := s.Info(context.Background())
		if name == wire.StreamOut {
			assert.Equal(t, jetstream.LimitsPolicy, info.Config.Retention, "delivered copies are purged by the janitor")
		}
	}
	_, err = os.Stat(c.DataDir + "/jetstream")
	assert.NoError(t, err, "the store is under data_dir")
}

func TestIngestFailedFlushIsNeverAA(t *testing.T) {
	c := testkit.Config(t)
	n, err := store.Open(context.Background(), c)
	require.NoError(t, err)
	defer n.Close()
	failing := store.NewSyncer(func() error { return syscall.EIO }) // a disk that reports a write-back error
	defer failing.Close()
	committer := &store.SyncedCommitter{Publisher: &store.PublishCommitter{JetStream: n.JetStream, Timeout: time.Second}, Syncer: failing, Timeout: time.Second}
	_, err = committer.Commit(context.Background(), &store.Received{Subject: "hl7.in.adt.ADT.A01", Data: []byte(adt), MsgID: "x"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EIO))

	client := serveIngest(t, config.ListenerConfig{Name: "adt", MaxMessageBytes: config.DefaultMaxMessageBytes}, committer, zerolog.Nop())
	ack := send(t, client, adt)
	assert.Equal(t, hl7.AE, ack.Code, "not on disk: the sender must resend")
	require.NotEmpty(t, ack.Errors)
	assert.Equal(t, hl7.CodeInternal, ack.Errors[0].Code)
}

// A message the store can never hold gets AR with a reason, never AE
// (which would have the sender resend it forever).
func TestIngestRejectsWhatCannotBeStored(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.NATS.URL = testkit.ExternalNATS(t)
	n, err := store.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	l := config.ListenerConfig{Name: "big", MaxMessageBytes: 4 << 20} // as if the cluster had shrunk since start
	client := serveIngest(t, l, n.Committer(5*time.Second), zerolog.Nop())
	reply, err := client.Send(context.Background(), testkit.BigMessage(t, "HUGE", 2_000_000))
	require.NoError(t, err)
	ack, err := hl7.ParseAck(reply)
	require.NoError(t, err)
	assert.Equal(t, hl7.AR, ack.Code)
	assert.Contains(t, ack.Text, "max_payload")
}
