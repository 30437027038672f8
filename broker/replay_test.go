package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadLetters sends n ORUs (dead-lettered at once for "down") and waits
// for their letters; it returns the letters' ids, newest first as the
// index lists them.
func deadLetters(t *testing.T, p *pipeline, prefix string, n int) []uint64 {
	t.Helper()
	for i := range n {
		require.Equal(t, hl7.AA, p.send(t, "in", oruMsg(fmt.Sprintf("%s%d", prefix, i))))
	}
	var ids []uint64
	testkit.WaitFor(t, 20*time.Second, func() error {
		d, err := p.ops.Index.DeadLetters(context.Background(), history.DLQFilter{})
		if err != nil || len(d.Items) != n {
			return fmt.Errorf("%d of %d dead letters indexed (%v)", len(d.Items), n, err)
		}
		ids = ids[:0]
		for _, l := range d.Items {
			id, _ := strconv.ParseUint(l.ID, 10, 64)
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}

// replaysQueued lists, in queue order, what HL7_OUT holds for dest that
// is a replay: each one's HL7-Replay-Of.
func replaysQueued(t *testing.T, p *pipeline, dest string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := p.nats.JetStream.Stream(ctx, wire.StreamOut)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == wire.OutSubject(dest) && m.Header.Get(wire.HeaderReplayOf) != "" {
			out = append(out, m.Header.Get(wire.HeaderReplayOf))
		}
	}
	return out
}

// A bulk replay goes in received order, whatever order it was asked in
// (dlq replay --all used to send ADT00032 … ADT00021: a discharge before
// its admit).
func TestDeadLetterReplayGoesInReceivedOrder(t *testing.T) {
	p := startPipeline(t, historyConfig(t, t.TempDir()))
	newestFirst := deadLetters(t, p, "ORD", 5)
	ids, err := p.ops.DeadLetterIDs(context.Background(), "down", 100)
	require.NoError(t, err)
	require.Len(t, ids, 5)
	assert.Less(t, ids[0], ids[4], "--all selects the oldest first")

	out, err := p.ops.ReplayDeadLetters(context.Background(), newestFirst, "files", "olga")
	require.NoError(t, err)
	require.Equal(t, 5, out.Done, "%+v", out)
	var want []string
	for i := len(newestFirst) - 1; i >= 0; i-- {
		want = append(want, "dlq "+strconv.FormatUint(newestFirst[i], 10))
	}
	assert.Equal(t, want, replaysQueued(t, p, "files"), "queued oldest first")
}

// Messages replayed by ids (or a filter, which lists newest first) are
// stored again in the order they were received.
func TestMessageReplayGoesInReceivedOrder(t *testing.T) {
	p := startPipeline(t, historyConfig(t, t.TempDir()))
	for i := range 3 {
		require.Equal(t, hl7.AA, p.send(t, "in", adtMsg(fmt.Sprintf("ADTB%d", i+1), "MRN9", "A08")))
	}
	out, err := p.ops.ReplayMessages(context.Background(), []uint64{3, 2, 1, 2}, "files", "olga")
	require.NoError(t, err)
	require.Equal(t, 3, out.Done, "each once: %+v", out)
	assert.Equal(t, []string{"message 1", "message 2", "message 3"}, replaysQueued(t, p, "files"))
}

// Two replays of the same dead letters at the same moment: each letter is
// replayed by one of them; the other says it was claimed (or is gone).
func TestConcurrentDeadLetterReplaysSendEachLetterOnce(t *testing.T) {
	p := startPipeline(t, historyConfig(t, t.TempDir()))
	ids := deadLetters(t, p, "DLQT", 8)
	var wg sync.WaitGroup
	outs := make([]history.Outcome, 2)
	for i := range outs {
		wg.Go(func() {
			var err error
			outs[i], err = p.ops.ReplayDeadLetters(context.Background(), ids, "files", fmt.Sprintf("op%d", i))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, len(ids), outs[0].Done+outs[1].Done, "every letter replayed, by one of the two: %+v", outs)
	for _, o := range outs {
		for _, r := range o.Items {
			if r.Result != "ok" {
				assert.True(t, strings.Contains(r.Result, "claimed") || strings.Contains(r.Result, "not found"), r.Result)
			}
		}
	}
	queued := replaysQueued(t, p, "files")
	assert.Len(t, queued, len(ids), "no letter queued twice: %v", queued)
	seen := map[string]bool{}
	for _, q := range queued {
		assert.False(t, seen[q], "%s queued twice", q)
		seen[q] = true
	}
	kv, err := p.nats.JetStream.KeyValue(context.Background(), wire.StateBucket)
	require.NoError(t, err)
	keys, err := kv.Keys(context.Background())
	if err != nil {
		require.ErrorIs(t, err, jetstream.ErrNoKeysFound)
	}
	for _, k := range keys {
		assert.False(t, strings.HasPrefix(k, "claim."), "claim %s released", k)
	}
}
