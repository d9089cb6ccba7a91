//go:build unix

package peerdrop

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockHome takes the home's lock file (an advisory flock, released by the
// kernel when the process dies, so a crash never leaves a stale lock) and
// writes this process's ID into it. A home held by another Node fails with
// ErrHomeInUse, naming the holder's process ID when it can be read.
func lockHome(home string) (io.Closer, error) {
	path := filepath.Join(home, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if b, rerr := os.ReadFile(path); rerr == nil && len(b) > 0 && len(b) < 32 {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					return nil, fmt.Errorf("%w (process %d)", ErrHomeInUse, pid)
				}
			}
			return nil, ErrHomeInUse
		}
		return nil, fmt.Errorf("peerdrop: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
