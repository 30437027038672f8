package mllp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A context whose deadline ends a read is also the connection's deadline:
// the read can fail, and the client drop its connection, before the
// context's callback runs. That callback must not touch the dropped
// connection (it used to read c.conn and panic on nil).
func TestClientContextDeadlineRacesTheRead(t *testing.T) {
	noLeaks(t)
	srv := &Server{Handler: HandlerFunc(func(context.Context, *ConnInfo, []byte) []byte { return nil })} // never answers
	addr := serve(t, srv)
	c := &Client{Addr: addr, MinBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
	defer c.Close()
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Microsecond)
		_, err := c.Send(ctx, []byte("silent"))
		cancel()
		assert.Error(t, err)
	}
}
