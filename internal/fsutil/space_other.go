//go:build !unix

package fsutil

// EnoughSpace cannot tell on this platform: the writes will.
func EnoughSpace(dir string, need int64) error { return nil }

// SyncFS is a no-op where syncfs(2) does not exist; the files written are
// closed, and the next sync of the system makes them durable.
func SyncFS(dir string) error { return nil }
