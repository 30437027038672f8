package admin

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
)

// sessionKV is HL7_STATE on a real NATS server started for the test.
func sessionKV(t *testing.T) store.SessionKV {
	nc, err := nats.Connect(testkit.ExternalNATS(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: wire.StateBucket})
	require.NoError(t, err)
	return store.SessionKV{JetStream: js}
}

// Sessions kept in the store: another broker (or this one restarted)
// knows a session; it ends after an hour without a request and eight
// hours after sign-in whatever the activity; signing out on one broker
// ends it on the other within seconds; the store never holds the id.
func TestSessionsLiveInTheStore(t *testing.T) {
	kv := sessionKV(t)
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := &Sessions{Store: kv, Max: 8 * time.Hour, Idle: time.Hour, now: clock}
	b := &Sessions{Store: kv, Max: 8 * time.Hour, Idle: time.Hour, now: clock} // another broker, or a after a restart

	id, sess, err := a.create(ctx, sha256.Sum256([]byte("alice-token")), Person{})
	require.NoError(t, err)
	got, ok := b.get(ctx, id)
	require.True(t, ok, "the other broker knows the session from the store")
	assert.Equal(t, sess.csrf, got.csrf)
	assert.Equal(t, sess.tokenHash, got.tokenHash)
	all, err := kv.Sessions(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	for key := range all {
		assert.NotEqual(t, id, key, "the store keys a hash of the id")
		assert.Equal(t, storeKey(id), key)
	}

	// Active every 50 minutes: alive at 7h30, ended at 8h whatever.
	for range 9 {
		advance(50 * time.Minute)
		_, ok = a.get(ctx, id)
		require.True(t, ok, "active at %s after sign-in", clock().Sub(sess.created))
	}
	advance(40 * time.Minute)
	_, ok = b.get(ctx, id)
	assert.False(t, ok, "eight hours after sign-in the session has ended")
	all, _ = kv.Sessions(ctx)
	assert.Empty(t, all, "and it is gone from the store")

	// An hour without a request ends it; the idle clock is shared.
	id, _, err = a.create(ctx, sha256.Sum256([]byte("alice-token")), Person{})
	require.NoError(t, err)
	advance(50 * time.Minute)
	_, ok = b.get(ctx, id) // a request on the other broker counts
	require.True(t, ok)
	advance(50 * time.Minute)
	_, ok = a.get(ctx, id)
	require.True(t, ok, "100 minutes after sign-in, 50 after the last request")
	advance(61 * time.Minute)
	_, ok = a.get(ctx, id)
	assert.False(t, ok, "61 minutes without a request")

	// Signing out on one broker ends the session on the other.
	id, _, err = a.create(ctx, sha256.Sum256([]byte("alice-token")), Person{})
	require.NoError(t, err)
	_, ok = b.get(ctx, id)
	require.True(t, ok)
	a.remove(ctx, id)
	advance(sessionRecheck + time.Second)
	_, ok = b.get(ctx, id)
	assert.False(t, ok, "signed out everywhere")
}
