package feed

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/mllp"
)

// endpoint serves an Endpoint answering code on 127.0.0.1.
func endpoint(t *testing.T, code string) string {
	t.Helper()
	outcome, mode, err := AckChoice(code)
	require.NoError(t, err)
	srv := &mllp.Server{Name: "test", Handler: &Endpoint{Outcome: outcome, Mode: mode, Log: zerolog.Nop()}, Logger: zerolog.Nop()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// SendOne sends with CR terminators, reads the ACK and checks it: AA is
// accepted, AR is not, and a message that does not parse is still sent.
func TestSendOneChecksTheACK(t *testing.T) {
	msg := []byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|C-1|P|2.5\nPID|1||M1\n")
	aa := &mllp.Client{Addr: endpoint(t, "AA"), ReplyTimeout: 5 * time.Second}
	defer aa.Close()
	r := SendOne(context.Background(), aa, msg, SendOptions{})
	assert.Equal(t, SendResult{ControlID: "C-1", Code: "AA", Accepted: true}, r)

	fresh := SendOne(context.Background(), aa, msg, SendOptions{FreshControlID: true})
	assert.True(t, fresh.Accepted)
	assert.NotEqual(t, "C-1", fresh.ControlID, "a new MSH-10")

	ar := &mllp.Client{Addr: endpoint(t, "AR"), ReplyTimeout: 5 * time.Second}
	defer ar.Close()
	r = SendOne(context.Background(), ar, msg, SendOptions{})
	assert.Equal(t, string(hl7.AR), r.Code)
	assert.False(t, r.Accepted)

	r = SendOne(context.Background(), aa, []byte("not HL7\n"), SendOptions{})
	assert.Empty(t, r.ControlID, "unparseable: sent anyway, without a control ID")
	assert.Equal(t, "AR", r.Code, "the endpoint rejects it")
}
