// Package sftpconn opens SFTP sessions for the SFTP source and
// destination: SSH with a password or a private key, the server's host
// key checked against known_hosts unless the admin turns that off. Its
// errors say what failed (the address, the user, which check) and never
// a password or key.
package sftpconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config is how to reach one SFTP server.
type Config struct {
	Addr           string // HOST:PORT
	User           string
	Password       string // expanded from its reference; empty: none
	PrivateKeyFile string // an unencrypted private key (OpenSSH or PEM); empty: none
	// KnownHosts is the known_hosts file the server's key must be in;
	// empty: ~/.ssh/known_hosts.
	KnownHosts string
	// InsecureSkipHostKeyCheck accepts any host key (test servers only).
	InsecureSkipHostKeyCheck bool
	Timeout                  time.Duration // dial and handshake; 0: 30 s
}

// Conn is an SFTP session over its SSH connection.
type Conn struct {
	*sftp.Client
	ssh *ssh.Client
}

// Close ends the session and the connection.
func (c *Conn) Close() error {
	err := c.Client.Close()
	if e := c.ssh.Close(); err == nil {
		err = e
	}
	return err
}

// DefaultKnownHosts is ~/.ssh/known_hosts.
func DefaultKnownHosts() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".ssh/known_hosts"
	}
	return filepath.Join(home, ".ssh", "known_hosts")
}

// ClientConfig is the SSH client config of c: its auth methods and host
// key check. It reads the key and known_hosts files.
func (c Config) ClientConfig() (*ssh.ClientConfig, error) {
	cc := &ssh.ClientConfig{User: c.User, Timeout: c.Timeout}
	if cc.Timeout == 0 {
		cc.Timeout = 30 * time.Second
	}
	if c.PrivateKeyFile != "" {
		pem, err := os.ReadFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("private_key_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("private_key_file %s is protected by a passphrase: give an unencrypted key, readable by the broker alone", c.PrivateKeyFile)
			}
			return nil, fmt.Errorf("private_key_file %s is not a private key: %v", c.PrivateKeyFile, err)
		}
		cc.Auth = append(cc.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		pw := c.Password
		cc.Auth = append(cc.Auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			answers := make([]string, len(qs))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
	}
	if len(cc.Auth) == 0 {
		return nil, errors.New("no password and no private_key_file: give one")
	}
	if c.InsecureSkipHostKeyCheck {
		cc.HostKeyCallback = ssh.InsecureIgnoreHostKey()
		return cc, nil
	}
	file := c.KnownHosts
	if file == "" {
		file = DefaultKnownHosts()
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s cannot be read (add the server's key with ssh-keyscan): %w", file, err)
	}
	cc.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("the server's %s host key is not in %s: add it (ssh-keyscan -p PORT HOST >> %s) after checking its fingerprint %s",
					key.Type(), file, file, ssh.FingerprintSHA256(key))
			}
			return fmt.Errorf("the server's %s host key (%s) does not match the one %s holds: the server was changed, or someone stands between",
				key.Type(), ssh.FingerprintSHA256(key), file)
		}
		return err
	}
	cc.HostKeyAlgorithms = hostKeyAlgorithms(check, c.Addr)
	return cc, nil
}

// hostKeyAlgorithms lists the algorithms of the keys known_hosts holds
// for addr, so that the server shows one of those (without this, a
// server with several keys may show another and fail the check).
func hostKeyAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	probe := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	var ke *knownhosts.KeyError
	if err := check(knownhosts.Normalize(addr), probe, probeKey{}); !errors.As(err, &ke) {
		return nil
	}
	var out []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			out = append(out, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, t)
		default:
			out = append(out, t)
		}
	}
	return out
}

// probeKey is a key no known_hosts holds: checking it lists the ones that
// are held.
type probeKey struct{}

func (probeKey) Type() string                        { return "hl7broker-probe" }
func (probeKey) Marshal() []byte                     { return []byte("hl7broker-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

// Dial opens an SFTP session to c.Addr.
func Dial(ctx context.Context, c Config) (*Conn, error) {
	cc, err := c.ClientConfig()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cc.Timeout}
	nc, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(cc.Timeout))
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, c.Addr, cc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ssh to %s as %s: %s", c.Addr, c.User, strings.TrimPrefix(err.Error(), "ssh: "))
	}
	_ = nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	s, err := sftp.NewClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp on %s: %w", c.Addr, err)
	}
	return &Conn{Client: s, ssh: client}, nil
}
