package store

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatedFlush is a flush that reports when it begins and waits to be let go.
type gatedFlush struct {
	began   chan struct{}
	release chan error
}

func newGatedFlush() *gatedFlush {
	return &gatedFlush{began: make(chan struct{}, 10), release: make(chan error)}
}

func (g *gatedFlush) flush() error {
	g.began <- struct{}{}
	return <-g.release
}

func syncAsync(s *Syncer) chan error {
	done := make(chan error, 1)
	go func() { done <- s.Sync(context.Background()) }()
	return done
}

func TestSyncerCallersShareAFlushThatBeganAfterThem(t *testing.T) {
	g := newGatedFlush()
	s := NewSyncer(g.flush)
	defer s.Close()

	a := syncAsync(s)
	<-g.began // flush 1 is running; it began before b and c called
	b, c := syncAsync(s), syncAsync(s)
	// Let b and c register before flush 1 ends: they must not ride on it.
	require.Eventually(t, func() bool { return s.Waiting() == 3 }, 5*time.Second, time.Millisecond, "waiting for %s", `s.Waiting() == 3`)
	g.release <- nil
	require.NoError(t, <-a)

	<-g.began // flush 2 began: b and c are still waiting for it to end
	select {
	case <-b:
		t.Fatal("b returned on a flush that began before it called")
	case <-c:
		t.Fatal("c returned on a flush that began before it called")
	default:
	}
	g.release <- nil
	require.NoError(t, <-b)
	require.NoError(t, <-c)
	n, _ := s.Flushes()
	assert.EqualValues(t, 2, n, "b and c shared one flush")
}

// received waits up to 5 s for ch, failing with what it waited for.
func received[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestSyncerSyncWithinRidesOnAnotherCallersFlush(t *testing.T) {
	g := newGatedFlush()
	s := NewSyncer(g.flush) // closed at the end only: a failure may leave a flush held

	router := make(chan error, 1)
	go func() { router <- s.SyncWithin(context.Background(), time.Hour) }()
	require.Eventually(t, func() bool { return s.Waiting() == 1 }, 5*time.Second, time.Millisecond, "waiting for %s", `s.Waiting() == 1`)
	sender := syncAsync(s) // begins the flush the router waits for
	received(t, g.began, "the sender's flush to begin")
	g.release <- nil
	require.NoError(t, received(t, sender, "the sender's Sync"))
	require.NoError(t, received(t, router, "the router's SyncWithin, served by the sender's flush"))
	n, _ := s.Flushes()
	assert.EqualValues(t, 1, n, "one flush for both")

	alone := make(chan error, 1)
	go func() { alone <- s.SyncWithin(context.Background(), 10*time.Millisecond) }()
	received(t, g.began, "a flush of its own once nobody else began one")
	g.release <- nil
	require.NoError(t, received(t, alone, "SyncWithin with nobody else flushing"))
	s.Close()
}

func TestSyncerFailureReachesItsWaitersOnly(t *testing.T) {
	g := newGatedFlush()
	s := NewSyncer(g.flush)
	defer s.Close()
	a := syncAsync(s)
	<-g.began
	g.release <- syscall.EIO
	err := <-a
	require.ErrorIs(t, err, syscall.EIO, "a failed write-back fails the ACK it was for")

	b := syncAsync(s)
	<-g.began
	g.release <- nil
	assert.NoError(t, <-b, "a later good flush serves later callers")
}

func TestSyncerContextAndClose(t *testing.T) {
	g := newGatedFlush()
	s := NewSyncer(g.flush)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Sync(ctx) }()
	<-g.began
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)

	waiting := syncAsync(s) // queued behind the flush still running
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	g.release <- nil
	for stopped := false; !stopped; { // Close may come before or after one more flush
		select {
		case <-closed:
			stopped = true
		case <-g.began:
			g.release <- nil
		}
	}
	err := <-waiting
	if err != nil { // it may have been served by the flush that ended, or stopped
		assert.ErrorIs(t, err, errSyncerClosed)
	}
	assert.ErrorIs(t, s.Sync(context.Background()), errSyncerClosed, "a closed syncer promises nothing")
}

func TestStoreSyncerFlushesTheFileSystem(t *testing.T) {
	s, err := storeSyncer(t.TempDir())
	require.NoError(t, err)
	if s == nil {
		require.NotEqual(t, "linux", runtime.GOOS, "syncfs is there on Linux")
		t.Skip("no syncfs on " + runtime.GOOS + ": the server syncs every write instead")
	}
	defer s.Close()
	require.NoError(t, s.Sync(context.Background()))
	n, _ := s.Flushes()
	assert.EqualValues(t, 1, n)
}

func TestOpenNATSChoosesHowToSync(t *testing.T) {
	for _, tc := range []struct {
		durability string
		perWrite   bool
		group      bool
	}{{"fsync", false, runtime.GOOS == "linux"}, {"fsync", true, false}, {"os", false, false}} {
		c := testkit.Config(t)
		c.NATS.Durability = tc.durability
		n, err := OpenWith(context.Background(), c, EmbedOptions{PerWriteSync: tc.perWrite})
		require.NoError(t, err)
		assert.Equal(t, tc.group, n.Syncer != nil, "%+v", tc)
		_, isSynced := n.Committer(time.Second).(*SyncedCommitter)
		assert.Equal(t, tc.group, isSynced, "%+v", tc)
		if tc.durability == "fsync" {
			assert.Equal(t, !tc.group, n.server.JetStreamConfig().SyncAlways, "without group sync the server syncs every write")
		}
		n.Close()
	}
}
