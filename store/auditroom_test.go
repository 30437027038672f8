package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuditReserveIsAShareOfTheDiskWithinBounds(t *testing.T) {
	assert.EqualValues(t, 16<<20, AuditReserve(64<<20), "at least 16 MiB")
	assert.EqualValues(t, 512<<20, AuditReserve(10<<30), "5% of 10 GiB")
	assert.EqualValues(t, 1<<30, AuditReserve(500<<30), "at most 1 GiB")
}

// The audit trail stops at the reserve; intake goes on into it. A data
// folder on a 64 MB tmpfs is filled until 8 MiB are left: an audit entry
// is refused with why, and a message is still stored.
func TestAuditStopsAtTheReserveAndIntakeGoesOn(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.DataDir = testkit.MountTmpfs(t, 64)
	n, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	ctx := context.Background()
	require.NoError(t, n.AuditRoom())
	require.NoError(t, AppendAudit(ctx, n.JetStream, wire.AuditEntry{User: "olga", Action: "message.view", IDs: []string{"1"}}))

	testkit.FillDisk(t, filepath.Join(cfg.DataDir, "filler"), 8<<20)
	err = n.AuditRoom()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kept for intake")

	_, err = n.JetStream.Publish(ctx, wire.InSubject("adt", "ADT", "A01"), []byte(testkit.ADT))
	assert.NoError(t, err, "intake still stores into the reserve")
}
