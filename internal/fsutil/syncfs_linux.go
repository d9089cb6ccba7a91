package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// SyncFS flushes the file system that holds dir (syncfs(2)): one call
// makes many small files written there durable.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
