package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The busy streams are written in blocks of at most 4 MB (not the 8 MB
// a stream without limits gets), and the per-subject limit that asks
// for them never drops a message: 6 MB of messages on one subject are
// all kept, across two blocks or more.
func TestBusyStreamsWrite4MBBlocks(t *testing.T) {
	n := openTestStore(t)
	ctx := context.Background()
	body := make([]byte, 64<<10)
	const count = 96 // 6 MB
	for _, subject := range []string{wire.InSubject("adt", "ADT", "A01"), wire.OutSubject("emr"), wire.SubjectEvents} {
		for range count {
			_, err := n.JetStream.Publish(ctx, subject, body)
			require.NoError(t, err)
		}
	}
	for _, stream := range []string{wire.StreamIn, wire.StreamOut, wire.StreamEvents} {
		s, err := n.JetStream.Stream(ctx, stream)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, count, info.State.Msgs, "%s keeps every message", stream)
		blocks, err := filepath.Glob(filepath.Join(n.storeDir, "jetstream", "*", "streams", stream, "msgs", "*.blk"))
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(blocks), 2, "%s: 6 MB fill more than one 4 MB block", stream)
		for _, b := range blocks {
			fi, err := os.Stat(b)
			require.NoError(t, err)
			assert.LessOrEqual(t, fi.Size(), int64(4<<20)+int64(len(body))+512, "%s: block %s", stream, filepath.Base(b))
		}
	}
}
