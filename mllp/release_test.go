package mllp

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A connection whose sender is quiet for releaseAfter gives its buffers
// back and waits without them; its next message, and one that pauses
// half-way (a frame begun is read as ever, under the read timeout), are
// served as before.
func TestQuietConnectionReleasesItsBuffers(t *testing.T) {
	released := make(chan struct{}, 16)
	testHookRelease = func() { released <- struct{}{} }
	t.Cleanup(func() { testHookRelease = nil })
	addr := serve(t, &Server{Handler: echo, ReadTimeout: 10 * time.Second})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	r := NewReader(conn)
	roundTrip := func(msg string) {
		t.Helper()
		require.NoError(t, WriteFrame(conn, []byte(msg)))
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		reply, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, "ACK:"+msg, string(reply))
	}
	roundTrip("MSH|first")
	select {
	case <-released:
	case <-time.After(releaseAfter + 5*time.Second):
		t.Fatal("waited for the quiet connection to release its buffers")
	}
	roundTrip("MSH|second, after the release")

	// A frame begun, a pause longer than releaseAfter, then its end.
	_, err = conn.Write([]byte{StartBlock, 'M', 'S', 'H'})
	require.NoError(t, err)
	select {
	case <-released:
		t.Fatal("released its buffers in the middle of a frame")
	case <-time.After(releaseAfter + 300*time.Millisecond):
	}
	_, err = conn.Write([]byte("|third" + string([]byte{EndBlock, CR})))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	reply, err := r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "ACK:MSH|third", string(reply))
}

// Release gives the buffers back only when nothing is buffered; the next
// ReadFrame takes one again.
func TestReaderRelease(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := NewReader(a)
	go func() { _, _ = b.Write(AppendFrame(AppendFrame(nil, []byte("one")), []byte("two"))) }()
	f, err := r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "one", string(f))
	r.Release() // "two" is buffered: kept
	require.NotNil(t, r.br)
	f, err = r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "two", string(f))
	r.Release()
	assert.Nil(t, r.br)
	go func() { _, _ = b.Write(AppendFrame(nil, []byte("three"))) }()
	f, err = r.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "three", string(f))
}
