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

func newFolder(cfg config.SourceConfig, log zerolog.Logger) folder {
	if cfg.Type == "sftp" {
		return &sftpFolder{cfg: cfg, log: log}
	}
	return localFolder{cfg: cfg}
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
func candidate(cfg config.SourceConfig, name string) bool {
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
type localFolder struct{ cfg config.SourceConfig }

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
