//go:build unix

package fsutil

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// EnoughSpace returns an error if the file system of dir has less than
// need bytes free for this user.
func EnoughSpace(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown: let the writes say
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free >= 0 && need > free {
		return fmt.Errorf("not enough space in %s: %d bytes needed, %d free", dir, need, free)
	}
	return nil
}

// NoFollow is the open flag that refuses a symbolic link as the last
// component of the path.
const NoFollow = unix.O_NOFOLLOW
