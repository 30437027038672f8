// Package fsutil writes message files safely: atomic writes and file
// names made from control IDs.
package fsutil

import (
	"errors"
	"os"
	"path/filepath"
)

// TempPattern names WriteAtomic's temporary files (a leading dot: folder
// readers skip them).
const TempPattern = ".tmp-*"

// WriteAtomic writes data to a temporary file beside name and renames it
// into place, so a reader never sees half a message.
func WriteAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), TempPattern)
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// SafeName keeps the letters, digits, '.', '-' and '_' of id (others
// become '_'), at most 64 of them, so it can name a file;
// "no-control-id" when id is empty.
func SafeName(id string) string {
	if id == "" {
		return "no-control-id"
	}
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 64)])
}
