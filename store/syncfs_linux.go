package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// storeSyncer returns a Syncer that flushes the file system holding dir
// (syncfs(2)): the JetStream store, with every message whose PubAck has
// come back (the server writes a message to the OS before its PubAck),
// and every directory entry of a new block file with it. Since Linux 5.8
// syncfs reports write-back errors.
func storeSyncer(dir string) (*Syncer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open store for syncing: %w", err)
	}
	fd := int(f.Fd())
	if err := unix.Syncfs(fd); err != nil { // refused here: fall back to per-message fsync
		f.Close()
		return nil, nil
	}
	s := NewSyncer(func() error { return unix.Syncfs(fd) })
	s.closeFile = f.Close
	return s, nil
}
