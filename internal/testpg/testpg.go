// Package testpg starts a real PostgreSQL server for a test: initdb into
// a temporary folder and postgres on a free port of 127.0.0.1, with a
// user that logs in by password. A test that calls Start skips, saying
// why, where PostgreSQL is not installed (.ci/run installs Debian's
// postgresql).
package testpg

import (
	"context"
	"fmt"
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

	"github.com/jackc/pgx/v5"

	"github.com/hl7broker/hl7broker/internal/testproc"
)

// User and Password are the login the server is made with.
const (
	User     = "hl7"
	Password = "test-password-not-secret"
)

// Server is one PostgreSQL server of a test.
type Server struct {
	t       testing.TB
	bin     string // the folder of initdb and postgres
	dir     string // its data folder
	sock    string
	Port    int
	cred    *syscall.Credential // the user it runs as when the test runs as root
	proc    *testproc.Proc
	tls     []string // postgres's TLS settings, once EnableTLS
	logFile string
}

// Bin finds the folder of PostgreSQL's initdb and postgres: on PATH, or
// Debian's /usr/lib/postgresql/N/bin.
func Bin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p), nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL's initdb is neither on PATH nor in /usr/lib/postgresql/*/bin (install Debian's postgresql)")
	}
	return filepath.Dir(found[len(found)-1]), nil
}

// Start makes and starts a server, stopped when the test ends; it skips
// the test where PostgreSQL is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		t.Skip("skipping: " + err.Error())
	}
	root, err := os.MkdirTemp("", "hl7broker-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	s := &Server{t: t, bin: bin, dir: filepath.Join(root, "data"), sock: root, logFile: filepath.Join(root, "postgres.log")}
	if os.Geteuid() == 0 { // postgres refuses to run as root: run it as nobody
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("skipping: running as root, and there is no user nobody to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(root, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	pw := filepath.Join(root, "pw")
	if err := os.WriteFile(pw, []byte(Password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := s.command("initdb", "-D", s.dir, "-U", User, "--pwfile", pw, "--auth-host=scram-sha-256",
		"--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.bin, name), args...)
	if s.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	c.Env = append(os.Environ(), "LC_ALL=C")
	return c
}

// URL is the server's URL for database db (postgres when empty), without
// the password.
func (s *Server) URL(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.Port, db)
}

// Restart starts the server (again, on the same port and data) and waits
// until it takes a login.
func (s *Server) Restart() {
	t := s.t
	t.Helper()
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	args := []string{"-D", s.dir, "-p", strconv.Itoa(s.Port), "-k", s.sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"}
	cmd := s.command("postgres", append(args, s.tls...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if s.proc, err = testproc.Start(cmd); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	err = s.proc.WaitReady(30*time.Second, "postgres to take a login", func() error {
		conn, err := s.Connect(context.Background())
		if err == nil {
			conn.Close(context.Background())
		}
		return err
	})
	if err != nil {
		b, _ := os.ReadFile(s.logFile)
		t.Fatalf("%v; log: %s", err, tail(string(b)))
	}
}

// EnableTLS restarts the server with TLS on, serving certFile and keyFile
// (PEM); clients may still connect without TLS.
func (s *Server) EnableTLS(certFile, keyFile string) {
	s.t.Helper()
	dst := map[string]string{certFile: filepath.Join(s.sock, "server.crt"), keyFile: filepath.Join(s.sock, "server.key")}
	for from, to := range dst {
		b, err := os.ReadFile(from)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			s.t.Fatal(err)
		}
		if s.cred != nil { // postgres reads its key as its own user, and only if no one else can
			if err := os.Chown(to, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	s.tls = []string{"-c", "ssl=on", "-c", "ssl_cert_file=" + dst[certFile], "-c", "ssl_key_file=" + dst[keyFile]}
	s.Stop()
	s.Restart()
}

// Stop stops the server (a fast shutdown) and waits for it to exit.
func (s *Server) Stop() { s.proc.Stop(syscall.SIGINT, 30*time.Second) }

// Connect opens a connection to database postgres as User.
func (s *Server) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.URL(""))
	if err != nil {
		return nil, err
	}
	cfg.Password = Password
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// Exec runs SQL statements on database postgres, failing the test on an
// error.
func (s *Server) Exec(sql string, args ...any) {
	s.t.Helper()
	s.with(func(ctx context.Context, c *pgx.Conn) error { _, err := c.Exec(ctx, sql, args...); return err }, sql)
}

// Count returns the result of a query of one integer, such as a count.
func (s *Server) Count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	s.with(func(ctx context.Context, c *pgx.Conn) error { return c.QueryRow(ctx, sql, args...).Scan(&n) }, sql)
	return n
}

// with runs f on a new connection, failing the test on an error.
func (s *Server) with(f func(context.Context, *pgx.Conn) error, what string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.Connect(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := f(ctx, c); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

func tail(s string) string {
	if i := strings.LastIndex(s[:max(0, len(s)-2000)], "\n"); i > 0 {
		return s[i+1:]
	}
	return s
}
