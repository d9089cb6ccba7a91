//go:build !unix

package fsutil

// EnoughSpace cannot tell on this platform: the writes will.
func EnoughSpace(dir string, need int64) error { return nil }
