package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// historyConfig: messages to a file destination, ORUs also to one that
// is down (max 1 attempt: dead-lettered at once), MRNs indexed.
func historyConfig(t *testing.T, dataDir string) *config.Config {
	cfg := testkit.Config(t)
	cfg.DataDir = dataDir
	cfg.History = config.HistoryConfig{Enabled: true, SearchKeys: map[string]config.SearchKey{"mrn": {Path: "PID-3.1"}}}
	cfg.Listeners = []config.ListenerConfig{{Name: "in", Addr: "127.0.0.1:0"}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"files"}}, {Name: "labs", When: config.WhenConfig{Type: []string{"ORU"}}, To: []string{"down"}}}
	cfg.Destinations = []config.DestinationConfig{
		{Name: "files", Type: "file", Options: &delivery.FileOptions{Dir: t.TempDir()}},
		{Name: "down", Type: "mllp", Options: &delivery.MLLPOptions{Addr: "127.0.0.1:1"}, Retry: config.RetryConfig{MaxAttempts: 1}},
	}
	return cfg
}

// answers is what the index says of everything: every message, every
// dead letter, and one message's journey, as JSON.
func answers(t *testing.T, ix *history.Index) (msgs, dlq, journey string) {
	ctx := context.Background()
	page, err := ix.Search(ctx, history.Filter{Limit: 1000})
	require.NoError(t, err)
	d, err := ix.DeadLetters(ctx, history.DLQFilter{})
	require.NoError(t, err)
	m, err := ix.Message(ctx, 4) // L-3: an ORU, dead-lettered for "down"
	require.NoError(t, err)
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	return js(page), js(d), js(m)
}

// The index is derived from the streams: deleted, it is rebuilt on the
// next start with the same answers.
func TestHistoryIndexIsRebuiltFromTheStreams(t *testing.T) {
	dataDir := t.TempDir()
	p := startPipeline(t, historyConfig(t, dataDir))
	for i := range 12 {
		msg := adtMsg(fmt.Sprintf("H-%d", i), fmt.Sprintf("MRN%d", i%4), "A08")
		if i%3 == 0 {
			msg = oruMsg(fmt.Sprintf("L-%d", i))
		}
		require.Equal(t, hl7.AA, p.send(t, "in", msg))
	}
	settled := func(ix *history.Index) error {
		page, err := ix.Search(context.Background(), history.Filter{Limit: 100})
		if err != nil {
			return err
		}
		d, _ := ix.DeadLetters(context.Background(), history.DLQFilter{})
		if len(page.Items) != 12 || len(d.Items) != 4 {
			return fmt.Errorf("%d of 12 messages and %d of 4 dead letters indexed", len(page.Items), len(d.Items))
		}
		for _, s := range page.Items {
			if s.Status != history.StatusDelivered && s.Status != history.StatusDeadLettered {
				return fmt.Errorf("message %s still %s", s.ID, s.Status)
			}
		}
		return nil
	}
	ix := p.ops.Index
	testkit.WaitFor(t, 20*time.Second, func() error { return settled(ix) })
	msgs, dlq, journey := answers(t, ix)
	byMRN, err := ix.Search(context.Background(), history.Filter{Keys: map[string]string{"mrn": "MRN1"}})
	require.NoError(t, err)
	assert.Len(t, byMRN.Items, 2, "MRN1 is in two ADTs (the ORUs carry P7)")
	assert.Contains(t, journey, `"kind":"dead_lettered"`)
	require.NoError(t, p.Shutdown(context.Background()))

	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(filepath.Join(dataDir, IndexFile+suffix))
	}
	p2 := startPipeline(t, historyConfig(t, dataDir))
	ix2 := p2.ops.Index
	testkit.WaitFor(t, 20*time.Second, func() error { return settled(ix2) })
	msgs2, dlq2, journey2 := answers(t, ix2)
	assert.JSONEq(t, msgs, msgs2, "the same messages, statuses and order")
	assert.JSONEq(t, dlq, dlq2, "the same dead letters")
	assert.JSONEq(t, journey, journey2, "the same journey")
}

// With history.content_search, the indexer reads every message's words
// from HL7_IN as it is stored: a search by a word of any field finds it,
// without regard to case or accents; a search by words with it off is
// refused with why.
func TestContentSearchFindsMessagesByTheirWords(t *testing.T) {
	cfg := historyConfig(t, t.TempDir())
	cfg.History.ContentSearch = true
	p := startPipeline(t, cfg)
	require.Equal(t, hl7.AA, p.send(t, "in", adtMsg("W-1", "MRN1", "A08")))
	require.Equal(t, hl7.AA, p.send(t, "in", oruMsg("W-2")))
	ix := p.ops.Index
	found := func(text string) []string {
		page, err := ix.Search(context.Background(), history.Filter{Text: text})
		require.NoError(t, err)
		var ids []string
		for _, s := range page.Items {
			ids = append(ids, s.ControlID)
		}
		return ids
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := found("muller"); len(got) != 1 || got[0] != "W-1" {
			return fmt.Errorf("a search for muller finds %v, not W-1", got)
		}
		return nil
	})
	assert.Equal(t, []string{"W-2"}, found("hemoglobin g/dL"))
	assert.Empty(t, found("müller hemoglobin"), "every word must be in the message")

	off := startPipeline(t, historyConfig(t, t.TempDir()))
	_, err := off.ops.Index.Search(context.Background(), history.Filter{Text: "muller"})
	assert.ErrorIs(t, err, history.ErrNoContentSearch)
}
