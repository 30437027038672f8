package memory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cgroupTree is a fake /proc/self/cgroup, /proc/self/mountinfo and
// cgroup file system in a temporary folder.
type cgroupTree struct {
	t    *testing.T
	dir  string
	self string // the cgroup file
	info string // the mountinfo file
}

func newCgroupTree(t *testing.T, cgroup string, mounts ...string) *cgroupTree {
	dir := t.TempDir()
	c := &cgroupTree{t: t, dir: dir, self: filepath.Join(dir, "cgroup"), info: filepath.Join(dir, "mountinfo")}
	require.NoError(t, os.WriteFile(c.self, []byte(cgroup), 0o600))
	require.NoError(t, os.WriteFile(c.info, []byte(strings.ReplaceAll(strings.Join(mounts, "\n"), "$DIR", dir)+"\n"), 0o600))
	return c
}

// limit writes a limit file at rel under the fake file system.
func (c *cgroupTree) limit(rel, value string) {
	p := filepath.Join(c.dir, rel)
	require.NoError(c.t, os.MkdirAll(filepath.Dir(p), 0o750))
	require.NoError(c.t, os.WriteFile(p, []byte(value+"\n"), 0o600))
}

func (c *cgroupTree) read() (int64, error) { return cgroupLimit(c.self, c.info) }

const (
	mountV2      = "30 22 0:27 / $DIR/fs rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"
	mountV1Mem   = "34 30 0:31 / $DIR/fs/memory rw,relatime - cgroup cgroup rw,memory"
	mountV1CPU   = "31 30 0:28 / $DIR/fs/cpu rw,relatime - cgroup cgroup rw,cpu"
	mountUnified = "29 30 0:26 / $DIR/fs/unified rw,relatime - cgroup2 cgroup2 rw"
	mountOther   = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw"
)

// A systemd unit's MemoryMax on cgroup v2: the unit says "max", the slice
// above it has the limit; the smallest limit on the way up is the one.
func TestCgroupMemoryLimitV2TakesTheSmallestUpTheTree(t *testing.T) {
	c := newCgroupTree(t, "0::/system.slice/hl7broker.service\n", mountOther, mountV2)
	c.limit("fs/system.slice/hl7broker.service/memory.max", "max")
	c.limit("fs/system.slice/memory.max", "536870912")
	got, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(512<<20), got)

	c.limit("fs/system.slice/hl7broker.service/memory.max", "1073741824")
	got, err = c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(512<<20), got, "the slice's, smaller than the unit's")

	c.limit("fs/system.slice/hl7broker.service/memory.max", "268435456")
	got, err = c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(256<<20), got, "the unit's own, smaller limit")
}

// This machine's own files parse, whatever they say.
func TestCgroupMemoryLimitReadsThisMachine(t *testing.T) {
	_, err := cgroupLimit("/proc/self/cgroup", "/proc/self/mountinfo")
	require.NoError(t, err)
}

// A container on cgroup v2 sees its own group as the root.
func TestCgroupMemoryLimitV2Container(t *testing.T) {
	c := newCgroupTree(t, "0::/\n", mountV2)
	c.limit("fs/memory.max", "1073741824")
	got, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(1<<30), got)
}

// A hybrid system (cgroup v1 controllers, an empty v2 hierarchy) keeps
// memory on v1; a Docker container there lists its host path while its
// mount's root is that same path.
func TestCgroupMemoryLimitV1(t *testing.T) {
	c := newCgroupTree(t, "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n",
		strings.Replace(mountV1Mem, " / ", " /docker/abc ", 1), mountV1CPU, mountUnified)
	c.limit("fs/memory/memory.limit_in_bytes", "314572800")
	got, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(300<<20), got)

	// The host path under a mount of the whole hierarchy, unlimited all
	// the way up (v1 writes "unlimited" as a page-rounded MaxInt64).
	c = newCgroupTree(t, "4:memory:/process_api/abc\n0::/\n", mountV1Mem, mountUnified)
	c.limit("fs/memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712")
	c.limit("fs/memory/process_api/memory.limit_in_bytes", "9223372036854771712")
	c.limit("fs/memory/memory.limit_in_bytes", "9223372036854771712")
	got, err = c.read()
	require.NoError(t, err)
	assert.Zero(t, got, "unlimited")
}

// No limit to be found is no limit, not an error; a limit file that
// cannot be read is an error that names the file.
func TestCgroupMemoryLimitMissingAndBroken(t *testing.T) {
	got, err := cgroupLimit(filepath.Join(t.TempDir(), "none"), filepath.Join(t.TempDir(), "none"))
	require.NoError(t, err)
	assert.Zero(t, got, "no /proc")

	c := newCgroupTree(t, "0::/a\n", mountOther)
	got, err = c.read()
	require.NoError(t, err)
	assert.Zero(t, got, "no cgroup file system mounted")

	c = newCgroupTree(t, "0::/a\n", mountV2)
	got, err = c.read()
	require.NoError(t, err)
	assert.Zero(t, got, "no limit files")

	c.limit("fs/a/memory.max", "lots")
	_, err = c.read()
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join("fs", "a", "memory.max"))
}

// A mount point with a space is written \040 in mountinfo.
func TestCgroupMemoryLimitEscapedMountPoint(t *testing.T) {
	c := newCgroupTree(t, "0::/\n", "30 22 0:27 / $DIR/my\\040fs rw - cgroup2 cgroup2 rw")
	c.limit("my fs/memory.max", "2147483648")
	got, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, int64(2<<30), got)
}

func TestChooseMemoryLimit(t *testing.T) {
	choose := func(env bool, configured string, container int64) Limit {
		l, err := chooseLimit(env, configured, container)
		require.NoError(t, err)
		return l
	}
	assert.Equal(t, Limit{Bytes: 384 << 20, Container: 512 << 20, Source: "container"}, choose(false, "", 512<<20))
	assert.Equal(t, Limit{Bytes: 384 << 20, Container: 512 << 20, Source: "container"}, choose(false, "auto", 512<<20))
	assert.Equal(t, Limit{Container: 512 << 20, Source: "GOMEMLIMIT"}, choose(true, "300MiB", 512<<20), "GOMEMLIMIT wins")
	assert.Equal(t, Limit{Bytes: 300 << 20, Container: 512 << 20, Source: "config"}, choose(false, "300MiB", 512<<20), "memory_limit wins over the container")
	assert.Equal(t, Limit{Bytes: 256 << 20, Source: "config"}, choose(false, "256MiB", 0), "and holds outside one")
	assert.Equal(t, Limit{Container: 512 << 20, Source: "config"}, choose(false, "off", 512<<20), "off: none")
	assert.Equal(t, Limit{}, choose(false, "", 0), "no container limit: none")
	l, err := chooseLimit(false, "lots", 512<<20)
	assert.Error(t, err)
	assert.Equal(t, "container", l.Source, "a bad value falls back to auto")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GiB": 1 << 30, "300MB": 300 << 20, "1048576": 1 << 20, " 2 GiB ": 2 << 30, "64KiB": 64 << 10, "10B": 10} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "MiB", "12XB", "-5MiB", "99999999999999999999", "1.5GiB", "9999999999TiB"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}
