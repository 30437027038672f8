package sftpconn

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hl7broker/hl7broker/internal/testsshd"
)

// A session to a real OpenSSH server, by key, with its host key checked;
// a host key that is missing or changed is refused with what to do.
func TestDialChecksTheHostKey(t *testing.T) {
	srv := testsshd.Start(t)
	cfg := Config{Addr: srv.Addr, User: srv.User, PrivateKeyFile: srv.KeyFile, KnownHosts: srv.KnownHosts, Timeout: 10 * time.Second}
	c, err := Dial(context.Background(), cfg)
	require.NoError(t, err, srv.Log())
	f, err := c.Create(filepath.Join(srv.Dir, "hello.txt"))
	require.NoError(t, err)
	_, err = f.Write([]byte("hi"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	r, err := c.Open(filepath.Join(srv.Dir, "hello.txt"))
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	assert.Equal(t, "hi", string(b))
	require.NoError(t, c.Close())

	empty := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	cfg.KnownHosts = empty
	_, err = Dial(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "host key is not in "+empty)

	other := testsshd.Start(t) // another server's key under this address
	changed := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(changed, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, other.HostKey)+"\n"), 0o600))
	cfg.KnownHosts = changed
	_, err = Dial(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not match")

	cfg.KnownHosts = filepath.Join(t.TempDir(), "none")
	_, err = Dial(context.Background(), cfg)
	assert.ErrorContains(t, err, "cannot be read")

	cfg.KnownHosts, cfg.PrivateKeyFile = srv.KnownHosts, ""
	_, err = Dial(context.Background(), cfg)
	assert.ErrorContains(t, err, "no password and no private_key_file")
	cfg.Password = "wrong-password"
	_, err = Dial(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unable to authenticate")
	assert.NotContains(t, err.Error(), "wrong-password")
}
