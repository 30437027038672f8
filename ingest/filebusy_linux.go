package ingest

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openForWriting says whether another process holds the file open for
// writing, which is how a writer that pauses longer than stable_for looks.
// Linux grants a read lease only on a file no one has open for writing
// (fcntl F_SETLEASE, EAGAIN otherwise); the lease is dropped at once. Where
// a lease cannot be asked for (the file is another user's and the broker
// lacks CAP_LEASE, or the file system has no leases), it says false and the
// size-and-time checks stand alone.
func openForWriting(fh *os.File) bool {
	raw, err := fh.SyscallConn()
	if err != nil {
		return false
	}
	busy := false
	_ = raw.Control(func(fd uintptr) {
		if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK); err != nil {
			busy = errors.Is(err, unix.EAGAIN)
			return
		}
		_, _ = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
	})
	return busy
}
