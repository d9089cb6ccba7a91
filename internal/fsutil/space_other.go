//go:build !unix

package fsutil

// EnoughSpace cannot tell on this platform: the writes will.
func EnoughSpace(dir string, need int64) error { return nil }

// NoFollow: no such open flag here (creating a symbolic link needs
// privileges on Windows).
const NoFollow = 0
