// Package testmysql starts a real MariaDB server for a test:
// mariadb-install-db into a temporary folder and mariadbd on a free port
// of 127.0.0.1, with a user that logs in by password and a database of
// its own. A test that calls Start skips, saying why, where MariaDB is not
// installed (.ci/run installs Debian's mariadb-server).
package testmysql

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/hl7broker/hl7broker/internal/testproc"
)

// User, Password and Database are the login and database the server is
// made with.
const (
	User     = "hl7"
	Password = "test-password-not-secret"
	Database = "hl7"
)

// Server is one MariaDB server of a test.
type Server struct {
	t    testing.TB
	dir  string
	sock string
	Port int
	proc *testproc.Proc
}

// Start makes and starts a server; the test's cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/mariadbd"); err2 != nil {
			t.Skip("MariaDB is not installed (Debian's mariadb-server; .ci/run installs it)")
		}
		server = "/usr/sbin/mariadbd"
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Skip("mariadb-install-db is missing (Debian's mariadb-server; .ci/run installs it)")
	}
	dir, err := os.MkdirTemp("", "testmysql")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{t: t, dir: dir, sock: filepath.Join(dir, "sock")}
	who := []string{}
	if os.Geteuid() == 0 {
		who = []string{"--user=root"}
	}
	cmd := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--auth-root-authentication-method=normal",
		"--skip-test-db"}, who...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--socket=" + s.sock, "--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--pid-file=" + filepath.Join(dir, "pid"), "--log-error=" + filepath.Join(dir, "error.log")}, who...)
	p, err := testproc.Start(exec.Command(server, args...))
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 20*time.Second) })
	if err := p.WaitReady(60*time.Second, "mariadbd to accept connections", func() error {
		db, err := s.root()
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		return err
	}); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("%v\n%s", err, log)
	}
	s.Exec(fmt.Sprintf("CREATE DATABASE %s", Database),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", User, Password),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", Database, User))
	return s
}

// root is a connection as root over the server's socket.
func (s *Server) root() (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "unix", s.sock
	return sql.Open("mysql", c.FormatDSN())
}

// Exec runs statements as root, failing the test on an error.
func (s *Server) Exec(statements ...string) {
	s.t.Helper()
	db, err := s.root()
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	for _, st := range statements {
		if _, err := db.Exec(st); err != nil {
			s.t.Fatalf("%s: %v", st, err)
		}
	}
}

// DB is a connection to the test database as root.
func (s *Server) DB() *sql.DB {
	s.t.Helper()
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName, c.ParseTime = "root", "unix", s.sock, Database, true
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { db.Close() })
	return db
}

// URL is the mysql:// URL of the test database for User (no password).
func (s *Server) URL() string {
	return fmt.Sprintf("mysql://%s@127.0.0.1:%d/%s", User, s.Port, Database)
}
