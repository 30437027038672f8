package ingest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/internal/fsutil"
	"github.com/hl7broker/hl7broker/internal/sftpconn"
)

// sftpOpTimeout bounds one SFTP call (a listing, a whole file's read, a
// rename): a server that stops answering has its session cut, and the
// file is read again at a later poll.
const sftpOpTimeout = 5 * time.Minute

// SFTPOptions are the keys of type sftp: a folder on an SFTP server.
type SFTPOptions struct {
	config.SSHLogin `mapstructure:",squash"`
	FolderOptions   `mapstructure:",squash"`
	// MoveTo says where done_dir and error_dir are: on the server
	// (default: "done" and "error" beside dir there), or local folders
	// (both must be given) the files are copied to before they are
	// removed from the server.
	MoveTo string `mapstructure:"move_to" enum:"server,local"`
}

// type sftp: the files that appear in a folder of an SFTP server.
func init() {
	RegisterSource(SourceType[SFTPOptions]{
		Name:      "sftp",
		Documents: true,
		Check: func(o *SFTPOptions, _ config.SourceConfig, key string, c *config.Checker) {
			c.SSH(key, o.SSHLogin)
			switch {
			case o.MoveTo == "local" && o.OnDone == "move" && (o.DoneDir == "" || o.ErrorDir == ""):
				c.Add(key, "with move_to: local, give done_dir and error_dir: the local folders files are copied to")
			case o.MoveTo == "local" && o.ErrorDir == "":
				c.Add(key+".error_dir", "with move_to: local, give error_dir: the local folder refused files are copied to")
			}
			Folder{FolderOptions: o.FolderOptions, Login: &o.SSHLogin, MoveTo: o.MoveTo}.check("an sftp", key, c)
		},
		Defaults: func(o *SFTPOptions, _ *config.SourceConfig) {
			o.defaults(false)
			if o.MoveTo == "" {
				o.MoveTo = "server"
			}
		},
		Warnings: func(o *SFTPOptions, key string) []config.Problem { return o.SSHLogin.Warnings(key) },
		New: func(_ *SFTPOptions, s config.SourceConfig, env SourceEnv) (Source, error) {
			return newFileSource(s, env), nil
		},
	})
}

// sftpFolder is a folder on an SFTP server (a source of type sftp). Its
// session is opened at the first call and again after any failure. Done
// and error folders are on the server (move_to: server) or local
// (move_to: local: a file is copied there, then removed from the server).
type sftpFolder struct {
	cfg  Folder
	log  zerolog.Logger
	conn *sftpconn.Conn
}

// do runs f on the session, opened if need be; a failure ends the
// session, so that the next call opens a new one.
func (r *sftpFolder) do(ctx context.Context, f func(c *sftpconn.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, sftpOpTimeout)
	defer cancel()
	if r.conn == nil {
		s := r.cfg.Login
		c, err := sftpconn.Dial(ctx, sftpconn.Config{Addr: s.Addr, User: s.User, Password: s.Password, PrivateKeyFile: s.PrivateKeyFile,
			KnownHosts: s.KnownHosts, InsecureSkipHostKeyCheck: s.InsecureSkipHostKeyCheck, Timeout: 30 * time.Second})
		if err != nil {
			return fmt.Errorf("sftp: %w", err)
		}
		r.conn = c
	}
	conn := r.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := f(conn); err != nil {
		r.close()
		return fmt.Errorf("sftp: %w", err)
	}
	return nil
}

func (r *sftpFolder) close() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

func (r *sftpFolder) prepare(ctx context.Context) error {
	done, failed := r.cfg.FileDirs()
	if !r.cfg.Remote() {
		for _, d := range []string{done, failed} {
			if d != "" {
				if err := os.MkdirAll(d, 0o750); err != nil {
					return err
				}
			}
		}
		return r.do(ctx, func(c *sftpconn.Conn) error { _, err := c.Stat(r.cfg.Dir); return err })
	}
	return r.do(ctx, func(c *sftpconn.Conn) error {
		for _, d := range []string{r.cfg.Dir, done, failed} {
			if err := c.MkdirAll(d); err != nil {
				return fmt.Errorf("make folder %s: %w", d, err)
			}
		}
		return nil
	})
}

func (r *sftpFolder) list(ctx context.Context) ([]listed, error) {
	var out []listed
	root := path.Clean(r.cfg.Dir)
	err := r.do(ctx, func(c *sftpconn.Conn) error {
		w := c.Walk(root)
		for w.Step() {
			if err := w.Err(); err != nil {
				if w.Path() == root {
					return err
				}
				continue
			}
			st, p := w.Stat(), w.Path()
			if st.IsDir() {
				if p != root && (!r.cfg.Recursive || temporaryName(st.Name())) {
					w.SkipDir()
				}
				continue
			}
			if st.Mode().IsRegular() && candidate(r.cfg, st.Name()) {
				out = append(out, listed{path: p, size: st.Size(), modTime: st.ModTime()})
			}
		}
		return nil
	})
	sortListed(out)
	return out, err
}

func (r *sftpFolder) read(ctx context.Context, f listed) ([]byte, error) {
	var data []byte
	err := r.do(ctx, func(c *sftpconn.Conn) error {
		in, err := c.Open(f.path)
		if err != nil {
			return err
		}
		defer in.Close()
		data, err = io.ReadAll(io.LimitReader(in, maxFileBytes+1))
		return err
	})
	return data, err
}

func (r *sftpFolder) stat(ctx context.Context, f listed) (listed, error) {
	var now listed
	err := r.do(ctx, func(c *sftpconn.Conn) error {
		st, err := c.Stat(f.path)
		if err != nil {
			return err
		}
		now = listed{path: f.path, size: st.Size(), modTime: st.ModTime()}
		return nil
	})
	return now, err
}

func (r *sftpFolder) finish(ctx context.Context, f listed, data []byte, refused bool) (string, error) {
	done, failed := r.cfg.FileDirs()
	to := done
	if refused {
		to = failed
	}
	var dest string
	err := r.do(ctx, func(c *sftpconn.Conn) error {
		switch {
		case !refused && r.cfg.OnDone == "delete":
			return c.Remove(f.path)
		case r.cfg.Remote():
			dest = freeName(to, f.name(), func(p string) bool { _, err := c.Lstat(p); return err == nil }, path.Join)
			return c.Rename(f.path, dest)
		}
		dest = freeName(to, f.name(), func(p string) bool { _, err := os.Lstat(p); return err == nil }, filepath.Join)
		if data == nil || int64(len(data)) != f.size { // not read whole (too large): copy it over
			in, err := c.Open(f.path)
			if err != nil {
				return err
			}
			defer in.Close()
			if data, err = io.ReadAll(in); err != nil {
				return err
			}
		}
		if err := fsutil.WriteAtomic(dest, data); err != nil {
			return fmt.Errorf("copy to %s: %w", to, err)
		}
		return c.Remove(f.path)
	})
	return dest, err
}

func (r *sftpFolder) writeReport(ctx context.Context, dest string, report []byte) error {
	if !r.cfg.Remote() {
		return os.WriteFile(dest+".report.json", report, 0o640)
	}
	return r.do(ctx, func(c *sftpconn.Conn) error {
		out, err := c.Create(dest + ".report.json")
		if err != nil {
			return err
		}
		if _, err := out.Write(report); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
