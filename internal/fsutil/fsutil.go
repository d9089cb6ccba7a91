// Package fsutil has file-system helpers shared by several packages.
package fsutil

import "os"

// SyncDir fsyncs a directory so that a rename or link inside it survives a
// crash. Best effort: some systems cannot sync directories.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
