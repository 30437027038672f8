//go:build unix

package broker

import "golang.org/x/sys/unix"

// raiseFileLimit raises the soft limit on open files to the hard limit
// (Go does so at start too; this says so, and returns the limit).
func raiseFileLimit() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
			r = want
		}
	}
	return uint64(r.Cur), nil
}
