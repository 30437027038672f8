package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/testsshd"
)

// sftpSource is a file source of type sftp on a real OpenSSH server; the
// server runs on this machine, so the test drops files straight into the
// folder it serves, as a lab's upload would.
func sftpSource(t testing.TB, srv *testsshd.Server, cfg config.SourceConfig) *fileSourceFixture {
	o, _ := cfg.Options.(*SFTPOptions)
	if o == nil {
		o = &SFTPOptions{}
	}
	cfg.Type, cfg.Options = "sftp", o
	o.SSHLogin = config.SSHLogin{Addr: srv.Addr, User: srv.User, PrivateKeyFile: srv.KeyFile, KnownHosts: srv.KnownHosts}
	o.Dir = filepath.Join(srv.Dir, "outbound")
	f := newFileFixture(t, cfg)
	t.Cleanup(func() {
		if f.src.folder != nil {
			f.src.folder.close()
		}
	})
	return f
}

// Files on the server are read, split and stored; each moves to done/ or,
// with refused messages, to error/ with its report, both on the server.
func TestSFTPSourceReadsAndMovesOnTheServer(t *testing.T) {
	srv := testsshd.Start(t)
	f := sftpSource(t, srv, config.SourceConfig{})
	f.write(t, "batch1.hl7", "FHS|^~\\&|LAB\r"+fileMsg("S1")+fileMsg("S2")+"FTS|1\r")
	f.write(t, "bad.hl7", "PID|1||X^^^H^MR||Zyxwquist^Ann\r")
	f.write(t, ".uploading.hl7", fileMsg("S9")) // a temporary name: not read
	done, failed := filepath.Join(srv.Dir, "done"), filepath.Join(srv.Dir, "error")
	f.scanUntil(t, "batch1.hl7 in done/ and bad.hl7's report in error/ on the server", func() bool {
		return exists(filepath.Join(done, "batch1.hl7")) && exists(filepath.Join(failed, "bad.hl7.report.json"))
	})
	assert.EqualValues(t, 2, streamCount(t, f.nats))
	assert.True(t, exists(filepath.Join(f.dir, ".uploading.hl7")))
	b, err := os.ReadFile(filepath.Join(failed, "bad.hl7.report.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"file": "bad.hl7"`)
	assert.NotContains(t, string(b), "Zyxwquist")
}

// With move_to: local, a file read is copied to a local folder, then
// removed from the server.
func TestSFTPSourceMovesToLocalFolders(t *testing.T) {
	srv := testsshd.Start(t)
	local := t.TempDir()
	f := sftpSource(t, srv, config.SourceConfig{Options: &SFTPOptions{MoveTo: "local", FolderOptions: FolderOptions{DoneDir: filepath.Join(local, "done"), ErrorDir: filepath.Join(local, "error")}}})
	content := fileMsg("L1") + fileMsg("L2")
	f.write(t, "two.hl7", content)
	f.scanUntil(t, "two.hl7 in the local done folder", func() bool { return exists(filepath.Join(local, "done", "two.hl7")) })
	assert.False(t, exists(filepath.Join(f.dir, "two.hl7")), "removed from the server")
	b, err := os.ReadFile(filepath.Join(local, "done", "two.hl7"))
	require.NoError(t, err)
	assert.Equal(t, content, string(b))
	assert.EqualValues(t, 2, streamCount(t, f.nats))
}

// A server that is down fails the scan and leaves everything; once it is
// back, the file is read (and only once).
func TestSFTPSourceServerDownThenUp(t *testing.T) {
	srv := testsshd.Start(t)
	f := sftpSource(t, srv, config.SourceConfig{})
	f.write(t, "first.hl7", fileMsg("D1"))
	done := filepath.Join(srv.Dir, "done")
	f.scanUntil(t, "first.hl7 in done/", func() bool { return exists(filepath.Join(done, "first.hl7")) })

	srv.Stop()
	f.write(t, "second.hl7", fileMsg("D2"))
	err := f.src.scan(context.Background())
	require.Error(t, err, "the server is down")
	assert.Contains(t, err.Error(), "sftp: ")
	assert.True(t, exists(filepath.Join(f.dir, "second.hl7")))

	srv.Restart()
	f.scanUntil(t, "second.hl7 in done/ after the server came back", func() bool { return exists(filepath.Join(done, "second.hl7")) })
	assert.EqualValues(t, 2, streamCount(t, f.nats))
}

// BenchmarkFileSourceBatch: a 5,000-message batch file (1.1 MB) read,
// split and stored (embedded JetStream, one flush for the file), from a
// local folder and from an SFTP server on this machine, side by side.
func BenchmarkFileSourceBatch(b *testing.B) {
	const n = 5000
	var body strings.Builder
	for i := range n {
		body.WriteString(fileMsg(fmt.Sprintf("B%05d", i)))
	}
	for _, kind := range []string{"local", "sftp"} {
		b.Run(kind, func(b *testing.B) {
			var f *fileSourceFixture
			if kind == "sftp" {
				f = sftpSource(b, testsshd.Start(b), config.SourceConfig{})
			} else {
				f = newFileFixture(b, config.SourceConfig{})
			}
			done, _ := FolderOf(f.src.Config).FileDirs()
			for i := 0; b.Loop(); i++ {
				name := fmt.Sprintf("batch%d.hl7", i)
				// A new first line per file: the same bytes again would be a resend.
				f.write(b, name, fmt.Sprintf("FHS|^~\\&|LAB|%d\r", i)+body.String()+"FTS|1\r")
				for !exists(filepath.Join(done, name)) {
					if err := f.src.scan(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
