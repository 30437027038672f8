package heartbeat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	_ "github.com/hl7broker/hl7broker/delivery" // the destination types
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/store"
	"github.com/hl7broker/hl7broker/wire"
)

func load(t *testing.T, source string) (*config.Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`sources:
  - `+source+`
routes: [{name: all, to: [d]}]
destinations: [{name: d, type: file, dir: /tmp/x}]
`), 0o644))
	return config.Load(f)
}

// The one file is all it takes: check knows the type's keys and refuses
// others at their line, fills its defaults, and the broker's constructor
// makes a source that stores through ingest into a real JetStream.
func TestAHeartbeatSourceIsOneFile(t *testing.T) {
	cfg, err := load(t, `{name: beat, type: heartbeat, every: 1s}`)
	require.NoError(t, err)
	s := cfg.Sources[0]
	assert.Equal(t, &Options{Every: time.Second, ProcessedAs: "T"}, s.Options)

	n, err := store.Open(context.Background(), testkit.Config(t))
	require.NoError(t, err)
	t.Cleanup(n.Close)
	in := ingest.New(s.Listener(), n.BatchCommitter(5*time.Second), zerolog.Nop())
	src, err := ingest.NewSource(s, ingest.SourceEnv{Ingest: in, Sync: n.Sync, Log: zerolog.Nop()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, func() error {
		st, err := n.JetStream.Stream(ctx, wire.StreamIn)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs == 0 {
			return fmt.Errorf("HL7_IN holds %d messages", info.State.Msgs)
		}
		return nil
	})
	cancel()
	require.NoError(t, <-done)

	_, err = load(t, `{name: beat, type: heartbeat, every: 10ms, processing_id: X, dir: /in}`)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	got := map[string]string{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Message
	}
	assert.Equal(t, "must be at least 1s", got["sources[0].every"])
	assert.Equal(t, `"X" is not one of P, T, D`, got["sources[0].processing_id"])
	assert.Equal(t, "is not a key of type heartbeat sources", got["sources[0].dir"])
}
