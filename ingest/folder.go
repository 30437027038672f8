package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hl7broker/hl7broker/config"
)

// folder is where a file source finds its files and puts them when read:
// a local folder, or one on an SFTP server (sftpFolder).
type folder interface {
	// prepare makes the folders that must exist.
	prepare(ctx context.Context) error
	// list finds the candidate files, oldest first (then by path).
	list(ctx context.Context) ([]listed, error)
	// read reads f whole; errFileBusy when a writer still holds it open.
	read(ctx context.Context, f listed) ([]byte, error)
	// stat is how f looks now (an error wrapping fs.ErrNotExist when it
	// is gone).
	stat(ctx context.Context, f listed) (listed, error)
	// finish moves f, read whole as data, to done_dir (or deletes it);
	// refused, to error_dir. It returns where f went.
	finish(ctx context.Context, f listed, data []byte, refused bool) (string, error)
	// writeReport writes a report beside dest, a file finish moved.
	writeReport(ctx context.Context, dest string, report []byte) error
	close()
}

func newFolder(cfg Folder, log zerolog.Logger) folder {
	if cfg.Login != nil {
		return &sftpFolder{cfg: cfg, log: log}
	}
	return localFolder{cfg: cfg}
}

// FolderOptions are the keys of type file, and the folder keys of type
// sftp.
type FolderOptions struct {
	Dir       string        `mapstructure:"dir"`       // the folder watched (sftp: on the server)
	Glob      string        `mapstructure:"glob"`      // which names are read; default *
	Recursive bool          `mapstructure:"recursive"` // also the folders under dir
	DoneDir   string        `mapstructure:"done_dir"`  // default: "done" beside dir
	ErrorDir  string        `mapstructure:"error_dir"` // default: "error" beside dir
	OnDone    string        `mapstructure:"on_done" enum:"move,delete"`
	StableFor time.Duration `mapstructure:"stable_for"` // a file is read once unchanged this long
	Poll      time.Duration `mapstructure:"poll"`       // how often dir is listed
}

// Defaults of a folder's keys.
const (
	DefaultGlob      = "*"
	DefaultStableFor = time.Second
	DefaultPoll      = time.Second
)

func (o *FolderOptions) defaults(explicitStable bool) {
	if o.Glob == "" {
		o.Glob = DefaultGlob
	}
	if o.OnDone == "" {
		o.OnDone = "move"
	}
	if o.StableFor == 0 && !explicitStable {
		o.StableFor = DefaultStableFor
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
}

// Folder is where a file source's files are: a local folder, or one on an
// SFTP server (Login set).
type Folder struct {
	FolderOptions
	Login  *config.SSHLogin // nil: this machine's
	MoveTo string           // sftp: server or local
}

// FolderOf is the folder of a file or sftp source.
func FolderOf(s config.SourceConfig) Folder {
	switch o := s.Options.(type) {
	case *FolderOptions:
		return Folder{FolderOptions: *o}
	case *SFTPOptions:
		return Folder{FolderOptions: o.FolderOptions, Login: &o.SSHLogin, MoveTo: o.MoveTo}
	}
	return Folder{}
}

// Remote says whether dir, done_dir and error_dir are on an SFTP server.
func (f Folder) Remote() bool { return f.Login != nil && f.MoveTo != "local" }

// FileDirs are the done and error folders, defaults applied: "done" and
// "error" beside dir (an sftp source's on its server, with move_to:
// server).
func (f Folder) FileDirs() (done, failed string) {
	dirOf, join, clean := filepath.Dir, filepath.Join, filepath.Clean
	if f.Remote() {
		dirOf, join, clean = path.Dir, path.Join, path.Clean
	}
	parent := dirOf(clean(f.Dir))
	done, failed = f.DoneDir, f.ErrorDir
	if done == "" {
		done = join(parent, "done")
	}
	if failed == "" {
		failed = join(parent, "error")
	}
	return done, failed
}

// check checks a folder's keys (at key): what would read a file twice or
// never.
func (f Folder) check(kind, key string, c *config.Checker) {
	if f.Dir == "" {
		c.Add(key+".dir", "%s source needs the folder it watches", kind)
		return
	}
	if _, err := filepath.Match(f.Glob, "x"); err != nil {
		c.Add(key+".glob", "%q is not a file name pattern", f.Glob)
	}
	if f.StableFor < 0 || f.Poll <= 0 {
		c.Add(key, "stable_for must not be negative and poll must be positive")
	}
	done, failed := f.FileDirs()
	dir := filepath.Clean(f.Dir)
	if f.Login == nil || f.Remote() { // local folders of an sftp source are never the server's
		for _, d := range []struct{ key, path string }{{"done_dir", done}, {"error_dir", failed}} {
			if rel, err := filepath.Rel(dir, filepath.Clean(d.path)); err == nil && (rel == "." || f.Recursive && !strings.HasPrefix(rel, "..")) {
				c.Add(key+"."+d.key, "%s is inside the watched folder: its files would be read again", d.path)
			}
		}
	}
	if f.OnDone == "move" && filepath.Clean(done) == filepath.Clean(failed) {
		c.Add(key+".error_dir", "done_dir and error_dir must differ")
	}
}

// listed is a candidate file.
type listed struct {
	path    string
	size    int64
	modTime time.Time
	skip    string // why a file that matches is not read (a symbolic link); "" for one to read
}

func (f listed) name() string { return path.Base(filepath.ToSlash(f.path)) }

// candidate says whether a file named name is one the source reads.
func candidate(cfg Folder, name string) bool {
	if temporaryName(name) {
		return false
	}
	ok, _ := filepath.Match(cfg.Glob, name)
	return ok
}

func sortListed(out []listed) {
	slices.SortFunc(out, func(a, b listed) int {
		if c := a.modTime.Compare(b.modTime); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
}

// localFolder is a folder of this machine.
type localFolder struct{ cfg Folder }

func (l localFolder) prepare(context.Context) error {
	done, failed := l.cfg.FileDirs()
	for _, d := range []string{l.cfg.Dir, done, failed} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	return nil
}

func (l localFolder) list(context.Context) ([]listed, error) {
	var out []listed
	root := filepath.Clean(l.cfg.Dir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // a folder that vanished or cannot be read: skip it
		}
		if d.IsDir() {
			if p != root && (!l.cfg.Recursive || temporaryName(d.Name())) {
				return filepath.SkipDir
			}
			return nil
		}
		if !candidate(l.cfg, d.Name()) {
			return nil
		}
		if !d.Type().IsRegular() {
			// Named like a message file, but a link, pipe or device: never
			// read (a link could point anywhere), and said once.
			out = append(out, listed{path: p, skip: "not a regular file (" + d.Type().String() + "): a file source reads regular files only"})
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, listed{path: p, size: info.Size(), modTime: info.ModTime()})
		return nil
	})
	sortListed(out)
	return out, err
}

func (l localFolder) read(_ context.Context, f listed) ([]byte, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if openForWriting(fh) {
		return nil, errFileBusy
	}
	return io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
}

func (l localFolder) stat(_ context.Context, f listed) (listed, error) {
	info, err := os.Stat(f.path)
	if err != nil {
		return listed{}, err
	}
	return listed{path: f.path, size: info.Size(), modTime: info.ModTime()}, nil
}

func (l localFolder) finish(_ context.Context, f listed, _ []byte, refused bool) (string, error) {
	done, failed := l.cfg.FileDirs()
	switch {
	case refused:
		return moveFile(f.path, failed)
	case l.cfg.OnDone == "delete":
		return "", os.Remove(f.path)
	}
	return moveFile(f.path, done)
}

func (l localFolder) writeReport(_ context.Context, dest string, report []byte) error {
	return os.WriteFile(dest+".report.json", report, 0o640)
}

func (l localFolder) close() {}

// moveFile moves path into dir, under a new name if its name is taken
// there, and returns where it went. Across file systems it copies first.
func moveFile(path, dir string) (string, error) {
	dest := freeName(dir, filepath.Base(path), func(p string) bool {
		_, err := os.Lstat(p)
		return !errors.Is(err, fs.ErrNotExist)
	}, filepath.Join)
	if err := os.Rename(path, dest); err == nil {
		return dest, nil
	}
	if err := copyFile(path, dest); err != nil {
		return "", fmt.Errorf("move to %s: %w", dir, err)
	}
	return dest, os.Remove(path)
}

// freeName is dir/name, or dir/NAME.n.EXT for the first n not taken.
func freeName(dir, name string, taken func(string) bool, join func(...string) string) string {
	dest := join(dir, name)
	for n := 1; taken(dest); n++ {
		ext := filepath.Ext(name)
		dest = join(dir, fmt.Sprintf("%s.%d%s", strings.TrimSuffix(name, ext), n, ext))
	}
	return dest
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
