//go:build unix

package store

import "golang.org/x/sys/unix"

// freeBytes is the space left for an unprivileged writer on dir's file system.
func freeBytes(dir string) (uint64, error) {
	free, _, err := diskSpace(dir)
	return free, err
}

// diskSpace is the space left for an unprivileged writer on dir's file
// system, and that file system's size.
func diskSpace(dir string) (free, size uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
