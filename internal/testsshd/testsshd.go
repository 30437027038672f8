// Package testsshd starts OpenSSH's sshd for a test: a throwaway config,
// host key and user key in a temporary folder, on a free port of
// 127.0.0.1, with its internal SFTP server. The user is the one running
// the test, logging in by key. A test that calls Start skips, saying why,
// where sshd is not installed (.ci/run installs Debian's openssh-server).
package testsshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/internal/syncbuf"
	"github.com/hl7broker/hl7broker/internal/testproc"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Binary is where Debian's openssh-server puts sshd.
const Binary = "/usr/sbin/sshd"

// Server is one sshd of a test.
type Server struct {
	t          testing.TB
	Addr       string // 127.0.0.1:PORT
	User       string // the user that logs in (the test's)
	KeyFile    string // the user's private key (OpenSSH format, unencrypted)
	KnownHosts string // a known_hosts file holding the server's host key
	HostKey    ssh.PublicKey
	Dir        string // a folder of the test's, for the files SFTP moves
	config     string
	sshd       string
	proc       *testproc.Proc
	log        *syncbuf.Buffer
}

// Start makes and starts a server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary
	if _, err := os.Stat(bin); err != nil {
		p, err := exec.LookPath("sshd")
		if err != nil {
			t.Skip("skipping: OpenSSH's sshd is not installed (Debian's openssh-server; .ci/run installs it)")
		}
		bin = p
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := &Server{t: t, User: u.Username, Dir: filepath.Join(root, "files"), log: &syncbuf.Buffer{}}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostPub := writeKey(t, filepath.Join(root, "host_ed25519"))
	userPub := writeKey(t, filepath.Join(root, "user_ed25519"))
	s.KeyFile = filepath.Join(root, "user_ed25519")
	s.HostKey = hostPub
	if err := os.WriteFile(filepath.Join(root, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	s.KnownHosts = filepath.Join(root, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, hostPub)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	s.config = filepath.Join(root, "sshd_config")
	cfg := strings.Join([]string{
		"Port " + port,
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(root, "host_ed25519"),
		"PidFile " + filepath.Join(root, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(root, "authorized_keys"),
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"Subsystem sftp internal-sftp",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation folder
	}
	s.sshd = bin
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

func writeKey(t testing.TB, file string) ssh.PublicKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// Restart starts sshd (again, on the same port and keys) and waits until
// it answers with its banner.
func (s *Server) Restart() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.sshd, "-D", "-e", "-f", s.config)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	var err error
	if s.proc, err = testproc.Start(cmd); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	err = s.proc.WaitReady(20*time.Second, "sshd's banner on "+s.Addr, func() error {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "SSH-" {
			return fmt.Errorf("no banner: %q %v", buf, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v; log: %s", err, s.log.String())
	}
}

// Stop stops sshd and every session it serves, and waits for it: a
// server that goes away drops its clients.
func (s *Server) Stop() {
	if s.proc == nil || s.proc.Exited() {
		return
	}
	// Each session is a process of its own (sshd forks, and the child
	// starts a session of its own): end them, then sshd.
	for _, pid := range descendants(s.proc.Cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	s.proc.Stop(syscall.SIGTERM, 20*time.Second)
}

// descendants are the processes under pid, read from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(q int) {
		for c, pp := range parent {
			if pp == q {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// Log is what sshd printed.
func (s *Server) Log() string { return s.log.String() }
