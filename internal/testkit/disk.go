package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of size MB on a new folder, or skips the test
// where mounting is not allowed (not root, no CAP_SYS_ADMIN).
func MountTmpfs(t testing.TB, mb int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mb), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): this disk test needs root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// FillDisk writes to file until its file system has at most leave bytes
// free (0: until the kernel says ENOSPC).
func FillDisk(t testing.TB, file string, leave uint64) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatalf("filling the disk: %v", err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if leave > 0 {
			var st syscall.Statfs_t
			if err := syscall.Statfs(file, &st); err == nil && uint64(st.Bavail)*uint64(st.Bsize) <= leave {
				return
			}
		}
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}
