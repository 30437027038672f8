package memory

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// Under a heavy load the broker's heap doubles what it keeps live before
// Go collects (the store alone keeps its last seconds of writes), and a
// container's memory limit then ends it with an OOM kill. A soft limit
// makes the collector work harder as the heap nears it instead
// (docs/benchmarks-log.md: 200 MiB took a third off the peak at the same
// rates). The resident set stays some 50 MB above the heap, hence three
// quarters.
const (
	softLimitNum = 3
	softLimitDen = 4
)

// Limit is the soft memory limit ApplyLimit chooses.
type Limit struct {
	Bytes     int64  // the soft limit; 0: none set
	Container int64  // the container's limit it derives from; 0: none found
	Source    string // "GOMEMLIMIT", "config", "container" or "" (none)
}

// ApplyLimit gives the Go runtime a soft memory limit. GOMEMLIMIT, when
// set, wins (the runtime has applied it already; GOMEMLIMIT=off: no
// limit). Else configured, the config's memory_limit: a size such as
// 512MiB, "off" (no limit), or "auto" or "" (the default): three quarters
// of what the process's control group allows (a container's memory limit,
// a systemd unit's MemoryMax), and none outside one. It logs the choice.
// serve calls it once, before the broker starts.
func ApplyLimit(log zerolog.Logger, configured string) {
	container, err := cgroupLimit("/proc/self/cgroup", "/proc/self/mountinfo")
	if err != nil {
		log.Warn().Str("reason", err.Error()).Msg("memory: could not read the container's memory limit")
	}
	l, err := chooseLimit(os.Getenv("GOMEMLIMIT") != "", configured, container)
	if err != nil { // config.Validate checks it first
		log.Warn().Str("reason", err.Error()).Msg("memory: memory_limit ignored")
	}
	switch l.Source {
	case "GOMEMLIMIT":
		if limit := debug.SetMemoryLimit(-1); limit == math.MaxInt64 {
			log.Info().Msg("memory: no soft limit (GOMEMLIMIT=off)")
		} else {
			log.Info().Int64("soft_limit_mib", limit>>20).Msg("memory: soft limit from GOMEMLIMIT")
		}
	case "config":
		if l.Bytes == 0 {
			debug.SetMemoryLimit(math.MaxInt64)
			log.Info().Msg("memory: no soft limit (memory_limit: off)")
			return
		}
		debug.SetMemoryLimit(l.Bytes)
		log.Info().Int64("soft_limit_mib", l.Bytes>>20).Msg("memory: soft limit from memory_limit")
	case "container":
		debug.SetMemoryLimit(l.Bytes)
		log.Info().Int64("soft_limit_mib", l.Bytes>>20).Int64("container_limit_mib", l.Container>>20).
			Msg("memory: soft limit at three quarters of the container's limit (memory_limit or GOMEMLIMIT override it)")
	default:
		log.Info().Msg("memory: no soft limit (no container limit found; set memory_limit to bound the heap)")
	}
}

// chooseLimit is ApplyLimit's decision: GOMEMLIMIT wins, then the
// config's memory_limit, then the container's limit (0: none).
func chooseLimit(envSet bool, configured string, container int64) (Limit, error) {
	if envSet {
		return Limit{Container: container, Source: "GOMEMLIMIT"}, nil
	}
	switch configured {
	case "", "auto":
	case "off":
		return Limit{Container: container, Source: "config"}, nil
	default:
		n, err := ParseSize(configured)
		if err != nil {
			break
		}
		return Limit{Bytes: n, Container: container, Source: "config"}, nil
	}
	var err error
	if configured != "" && configured != "auto" {
		_, err = ParseSize(configured)
	}
	if container > 0 {
		return Limit{Bytes: container / softLimitDen * softLimitNum, Container: container, Source: "container"}, err
	}
	return Limit{}, err
}

// MinLimit is the smallest memory_limit taken: below what the broker
// keeps live under load the collector would run without pause.
const MinLimit = 64 << 20

// ParseSize reads a size as GOMEMLIMIT writes it: bytes, or a number
// with B, KiB, MiB, GiB or TiB (KB, MB, GB as the same powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size such as 512MiB, auto or off", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 512MiB, auto or off", s)
	}
	unit := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "KB": 1 << 10, "MiB": 1 << 20, "MB": 1 << 20, "GiB": 1 << 30, "GB": 1 << 30, "TiB": 1 << 40, "TB": 1 << 40}
	mul, ok := unit[strings.TrimSpace(t[i:])]
	if !ok || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is not a size such as 512MiB, auto or off", s)
	}
	return n * mul, nil
}

// cgroupLimit is the smallest memory limit set on the process's
// control group or an ancestor of it (0: none), read from the files
// cgroupFile (/proc/self/cgroup) and mountinfo (/proc/self/mountinfo)
// name. It reads cgroup v2 (memory.max) and v1's memory controller
// (memory.limit_in_bytes, used where a hybrid system mounts it).
// Missing files mean no limit.
func cgroupLimit(cgroupFile, mountinfo string) (int64, error) {
	paths, err := readCgroupPaths(cgroupFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // not Linux, or no /proc
	} else if err != nil {
		return 0, err
	}
	mounts, err := readCgroupMounts(mountinfo)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	for _, h := range []struct{ version, file string }{{"v1", "memory.limit_in_bytes"}, {"v2", "memory.max"}} {
		path, inGroup := paths[h.version]
		m, mounted := mounts[h.version]
		if !inGroup || !mounted {
			continue
		}
		return smallestLimit(m, path, h.file)
	}
	return 0, nil
}

// cgroupMount is where a cgroup hierarchy is mounted, and which of its
// groups is at the mount point (a container sees its own group as "/"
// or as its path on the host).
type cgroupMount struct{ point, root string }

// readCgroupPaths reads the process's group in the v2 hierarchy ("v2")
// and in v1's memory controller ("v1").
func readCgroupPaths(file string) (map[string]string, error) {
	paths := map[string]string{}
	return paths, eachLine(file, func(line string) {
		// hierarchy-ID:controller-list:path
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, path, ok2 := strings.Cut(rest, ":")
		switch {
		case !ok1 || !ok2:
		case id == "0" && controllers == "":
			paths["v2"] = path
		case hasField(controllers, "memory"):
			paths["v1"] = path
		}
	})
}

// readCgroupMounts finds the v2 hierarchy's mount and v1's memory
// controller's in a mountinfo file (the first of each).
func readCgroupMounts(file string) (map[string]cgroupMount, error) {
	mounts := map[string]cgroupMount{}
	return mounts, eachLine(file, func(line string) {
		// ID parent major:minor root mount-point options [optional...] - fstype source super-options
		left, right, ok := strings.Cut(line, " - ")
		l, r := strings.Fields(left), strings.Fields(right)
		if !ok || len(l) < 5 || len(r) < 3 {
			return
		}
		version := ""
		switch {
		case r[0] == "cgroup2":
			version = "v2"
		case r[0] == "cgroup" && hasField(r[2], "memory"):
			version = "v1"
		}
		if _, seen := mounts[version]; version != "" && !seen {
			mounts[version] = cgroupMount{point: unescapeMount(l[4]), root: unescapeMount(l[3])}
		}
	})
}

// eachLine calls f with each line of file.
func eachLine(file string, f func(string)) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f(sc.Text())
	}
	return sc.Err()
}

// smallestLimit reads file in the process's group and in each ancestor
// up to the mount point, and returns the smallest limit (0: none).
func smallestLimit(m cgroupMount, path, file string) (int64, error) {
	rel := "/"
	if m.root == "/" {
		rel = path
	} else if r, ok := strings.CutPrefix(path, m.root); ok && (r == "" || r[0] == '/') {
		rel = r
	} // else: the group is outside the mount's root (a container sees its
	// host path); the mount point is the container's own group.
	var smallest int64
	dir := filepath.Join(m.point, filepath.FromSlash(filepath.Clean("/"+rel)))
	for {
		v, err := readLimit(filepath.Join(dir, file))
		if err != nil {
			return 0, err
		}
		if v > 0 && (smallest == 0 || v < smallest) {
			smallest = v
		}
		if dir == filepath.Clean(m.point) || !strings.HasPrefix(dir, filepath.Clean(m.point)) {
			return smallest, nil
		}
		dir = filepath.Dir(dir)
	}
}

// readLimit reads one limit file: "max" (v2), or v1's page-rounded
// largest value, mean none (0), as does a missing file.
func readLimit(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	if v <= 0 || v >= math.MaxInt64/2 { // v1 writes "unlimited" as about MaxInt64
		return 0, nil
	}
	return v, nil
}

func hasField(list, name string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 is a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
