// Package testsmtp starts a real SMTP server for tests: Debian's
// aiosmtpd (python3-aiosmtpd, which .ci/run installs), keeping what it is
// sent in a Maildir. A test skips, saying why, where it is missing.
package testsmtp

import (
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/testpki"
	"github.com/hl7broker/hl7broker/internal/testproc"
	"github.com/stretchr/testify/require"
)

// debianPython is the interpreter Debian's python3-aiosmtpd installs for.
const debianPython = "/usr/bin/python3"

// Start starts Debian's aiosmtpd on 127.0.0.1, keeping what it is
// sent in a Maildir, with STARTTLS offered and required when pki is set.
func Start(t *testing.T, pki *testpki.PKI) (port int, maildir string) {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import aiosmtpd").Run(); err != nil {
		t.Skip("aiosmtpd is missing (Debian's python3-aiosmtpd; .ci/run installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	maildir = filepath.Join(t.TempDir(), "mail")
	args := []string{"-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", port)}
	if pki != nil {
		args = append(args, "--tlscert", pki.ServerCert, "--tlskey", pki.ServerKey)
	}
	args = append(args, "-c", "aiosmtpd.handlers.Mailbox", maildir)
	cmd := exec.Command(debianPython, args...)
	cmd.Stderr = os.Stderr
	p, err := testproc.Start(cmd)
	require.NoError(t, err)
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	require.NoError(t, p.WaitReady(20*time.Second, "aiosmtpd to accept connections", func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err
	}))
	return port, maildir
}

// Mails are the messages in a Maildir's new folder.
func Mails(t *testing.T, maildir string) []*mail.Message {
	entries, _ := os.ReadDir(filepath.Join(maildir, "new"))
	var out []*mail.Message
	for _, e := range entries {
		f, err := os.Open(filepath.Join(maildir, "new", e.Name()))
		require.NoError(t, err)
		m, err := mail.ReadMessage(f)
		require.NoError(t, err)
		out = append(out, m)
		t.Cleanup(func() { f.Close() })
	}
	return out
}
