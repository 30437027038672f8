package delivery

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testsshd"
)

// An sftp destination writes each message as a file on a real OpenSSH
// server, named by its pattern, with no temporary file left; a retry
// leaves one file; a server that is down is retried, and written to once
// it is back.
func TestSFTPDestinationWritesRenamesAndRetries(t *testing.T) {
	srv := testsshd.Start(t)
	out := filepath.Join(srv.Dir, "inbound", "results")
	dc := config.DestinationConfig{Name: "lab", Type: "sftp", Timeout: 5 * time.Second, Options: &SFTPOptions{
		SSHLogin: config.SSHLogin{Addr: srv.Addr, User: srv.User, PrivateKeyFile: srv.KeyFile, KnownHosts: srv.KnownHosts},
		Dir:      out, FileName: "{received}_{control_id}_{seq}.{ext}"}}
	config.DestinationTypeDefaults(&dc)
	d, err := New(dc, nil)
	require.NoError(t, err)
	defer d.Close()
	msg := Message{Data: []byte(oru), ControlID: "C/1", InSeq: 7, ReceivedAt: time.Date(2026, 1, 14, 13, 15, 31, 0, time.UTC)}
	res := d.Deliver(context.Background(), msg)
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	want := filepath.Join(out, "20260114T131531.000Z_C_1_0000000007.hl7")
	b, err := os.ReadFile(want)
	require.NoError(t, err)
	assert.Equal(t, oru, string(b))

	res = d.Deliver(context.Background(), msg) // a retry after a lost answer
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	entries, _ := os.ReadDir(out)
	assert.Len(t, entries, 1, "one file, and no temporary one")

	srv.Stop()
	msg.InSeq, msg.ControlID = 8, "C2"
	down := d.Deliver(context.Background(), msg)
	require.Equal(t, Retry, down.Outcome)
	assert.Contains(t, down.Reason, "sftp: ")
	srv.Restart()
	res = d.Deliver(context.Background(), msg)
	require.Equal(t, Delivered, res.Outcome, res.Reason)
	entries, _ = os.ReadDir(out)
	assert.Len(t, entries, 2)
}

// A file_name that could name two messages alike, or a folder, is refused.
func TestCheckFileName(t *testing.T) {
	assert.NoError(t, CheckFileName(DefaultFileName))
	assert.NoError(t, CheckFileName("ADT_{message_id}.txt"))
	assert.ErrorContains(t, CheckFileName("{control_id}.hl7"), "must hold {seq} or {message_id}")
	assert.ErrorContains(t, CheckFileName("out/{seq}.hl7"), "without folders")
	assert.ErrorContains(t, CheckFileName("{seq}-{mrn}.hl7"), "{mrn} is not one of")
	assert.Equal(t, "0000000041-no-control-id.json", FileName(DefaultFileName, "json", Message{InSeq: 41}))
}

// BenchmarkSFTPDeliver: a file per message (a 100-byte ORU) through one
// session to OpenSSH on this machine: create under a temporary name,
// write, close, rename.
func BenchmarkSFTPDeliver(b *testing.B) {
	srv := testsshd.Start(b)
	dc := config.DestinationConfig{Name: "lab", Type: "sftp", Timeout: 10 * time.Second, Options: &SFTPOptions{
		SSHLogin: config.SSHLogin{Addr: srv.Addr, User: srv.User, PrivateKeyFile: srv.KeyFile, KnownHosts: srv.KnownHosts},
		Dir:      filepath.Join(srv.Dir, "in")}}
	config.DestinationTypeDefaults(&dc)
	d, err := New(dc, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	msg := Message{Data: []byte(oru), ControlID: "C1"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg.InSeq = uint64(i + 1)
		if res := d.Deliver(context.Background(), msg); res.Outcome != Delivered {
			b.Fatal(res.Reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
