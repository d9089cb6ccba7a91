package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/peerdrop/peerdrop/internal/fsutil"
)

// partialName is the name of the file a transfer writes to before it is
// verified, beside the destination. It depends only on the transfer ID,
// so a later attempt at the same transfer finds it and resumes.
func partialName(id ID) string { return ".peerdrop-" + id.String() + ".part" }

// PartialPath is where a receiver keeps the partial file of transfer id
// received into dir, for a resume.
func PartialPath(dir string, id ID) string { return filepath.Join(dir, partialName(id)) }

// busyPartials holds the partial files being written in this process, so
// two attempts at the same transfer cannot write the same file.
var busyPartials sync.Map

func claimPartial(path string) bool {
	_, loaded := busyPartials.LoadOrStore(path, struct{}{})
	return !loaded
}

func releasePartial(path string) { busyPartials.Delete(path) }

// publish moves the verified partial file to dir/name. Unless overwrite
// is set, an existing file is never replaced: the name gets a " (n)"
// suffix. A hard link makes the no-replace check atomic; on file systems
// without hard links a check-then-rename is used.
func publish(partial, dir, name string, overwrite bool) (string, error) {
	defer fsutil.SyncDir(dir)
	if overwrite {
		dst := filepath.Join(dir, name)
		if err := os.Rename(partial, dst); err != nil {
			return "", fmt.Errorf("transfer: save %s: %w", dst, err)
		}
		return dst, nil
	}
	for i := 0; i < 10000; i++ {
		dst := filepath.Join(dir, numberedName(name, i))
		err := os.Link(partial, dst)
		if err == nil {
			os.Remove(partial)
			return dst, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := os.Lstat(dst); !errors.Is(serr, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(partial, dst); err != nil {
			return "", fmt.Errorf("transfer: save %s: %w", dst, err)
		}
		return dst, nil
	}
	return "", fmt.Errorf("transfer: save %s: too many files with that name", filepath.Join(dir, name))
}
