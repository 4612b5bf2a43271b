package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openSpool opens a new spool file in dir that has no name: an O_TMPFILE
// file, or, where the file system does not offer those, a temporary file
// removed at once. Either way it is only reachable through the open file, so
// it ends with the process — a crash, a kill -9 or a forced exit included —
// and never has to be cleaned up. Exports read it through the same file.
func openSpool(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("capture spool: creating its folder: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed spool)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("capture spool in %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, fmt.Errorf("capture spool in %s: %w", dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("capture spool: unlinking %s: %w", f.Name(), err)
	}
	return f, nil
}

// spoolPattern names the spool files of earlier versions (and of the
// fallback, for the moment between creating and removing one).
const spoolPattern = "capture-*.pcap"

// SweepResult is what SweepSpool removed.
type SweepResult struct {
	Files int
	Bytes int64
}

// Note says what was removed, for people ("" when nothing was).
func (r SweepResult) Note(dir string) string {
	if r.Files == 0 {
		return ""
	}
	return fmt.Sprintf("removed %d spool file(s) (%.1f MB) that interrupted runs left in %s", r.Files, float64(r.Bytes)/1e6, dir)
}

// SweepSpool removes the named spool files in dir — left by versions that
// kept named spools, when a run ended without its cleanup — except those a
// process still has open (a run of such a version going on now).
func SweepSpool(dir string) SweepResult {
	var res SweepResult
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	names, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil || len(names) == 0 {
		return res
	}
	open := openPaths(dir)
	for _, name := range names {
		st, err := os.Lstat(name)
		if err != nil || !st.Mode().IsRegular() || open[name] {
			continue
		}
		if os.Remove(name) == nil {
			res.Files++
			res.Bytes += st.Size()
		}
	}
	return res
}

// openPaths lists the files in dir that this user's processes have open
// (as /proc shows them).
func openPaths(dir string) map[string]bool {
	open := map[string]bool{}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, dir+string(os.PathSeparator)) {
			open[target] = true
		}
	}
	return open
}
