package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/peerdrop/peerdrop/internal/fsutil"
)

// maxStoreFile bounds any key store file read into memory.
const maxStoreFile = 4 << 20

// writeFileAtomic writes a key store file atomically with mode 0600.
func writeFileAtomic(path string, data []byte) error {
	if err := fsutil.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("identity: write %s: %w", path, err)
	}
	return nil
}

// readPrivateFile reads a key store file, refusing files that others can
// read or write and files larger than maxStoreFile.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("identity: %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: %s: %w: not a regular file", path, ErrCorrupt)
	}
	if err := checkPrivateMode(path, st.Mode()); err != nil {
		return nil, err
	}
	if st.Size() > maxStoreFile {
		return nil, fmt.Errorf("identity: %s: %w: %d bytes", path, ErrCorrupt, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}
	return data, nil
}

func checkPrivateMode(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil // ACLs, not mode bits
	}
	if mode.Perm()&0o077 != 0 {
		return &PermissionError{Path: path, Mode: mode}
	}
	return nil
}
