package peerdrop

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop/transfer"
)

// Source is a file the application reads itself (Config.Open): an
// Android content URI, an iOS security-scoped URL, a document in memory.
// ReadAt must be safe for concurrent use (a resumed delivery hashes the
// file from its start while sending its end). Stat's FileInfo gives the
// name offered (Name), the size (Size, the bytes ReadAt serves) and the
// modification time (ModTime, zero if unknown), and must be a regular file
// (Mode). An *os.File is a Source.
type Source interface {
	io.ReaderAt
	io.Closer
	Stat() (fs.FileInfo, error)
}

// IsURI says whether p names a Source (Config.Open) rather than a path:
// a scheme of two characters or more (a letter, then letters, digits, '+',
// '-' or '.') followed by "://".
func IsURI(p string) bool {
	scheme, _, ok := strings.Cut(p, "://")
	if !ok || len(scheme) < 2 { // "C://" is a Windows drive
		return false
	}
	for i, r := range scheme {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// open opens the file at p: a URI through Config.Open, or a path.
func (n *Node) open(p string) (Source, error) {
	if !IsURI(p) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return f, nil
	}
	if n.cfg.Open == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoOpener, p)
	}
	src, err := n.cfg.Open(p)
	if err != nil {
		return nil, fmt.Errorf("peerdrop: open %s: %w", p, err)
	}
	return src, nil
}

// statSource returns where p is read from (the absolute path, or the URI)
// and its FileInfo, which must be a regular file's.
func (n *Node) statSource(p string) (string, fs.FileInfo, error) {
	fi, uri, err := n.statURI(p)
	if !uri {
		if p, err = filepath.Abs(p); err == nil {
			fi, err = os.Stat(p)
		}
	}
	if err != nil {
		return "", nil, err
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("peerdrop: %s is not a regular file", p)
	}
	return p, fi, nil
}

// statURI stats the Source named by p; uri is false if p is a path (a
// manifest.External).
func (n *Node) statURI(p string) (fi fs.FileInfo, uri bool, err error) {
	if !IsURI(p) {
		return nil, false, nil
	}
	src, err := n.open(p)
	if err != nil {
		return nil, true, err
	}
	defer src.Close()
	fi, err = src.Stat()
	if err != nil {
		return nil, true, fmt.Errorf("peerdrop: stat %s: %w", p, err)
	}
	return fi, true, nil
}

// offered is what a transfer reads for the file at p (a path or a URI),
// offered as name with size bytes last modified at mod: each open checks
// that it is still that file (openUnchanged).
func (n *Node) offered(p, name string, size int64, mod time.Time, id transfer.ID) transfer.Source {
	return transfer.Source{Path: p, Name: name, ID: id, Size: size,
		Open: func() (transfer.File, error) { return n.openUnchanged(p, size, mod) }}
}

// openUnchanged opens the file at p, a path or a URI, and checks that it
// is still the one offered, of size bytes last modified at mod: a device
// tried again, or re-asking, must get the same bytes.
func (n *Node) openUnchanged(p string, size int64, mod time.Time) (transfer.File, error) {
	f, err := n.open(p)
	if err != nil {
		return nil, fmt.Errorf("peerdrop: %s changed or is gone since it was offered: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size || !fi.ModTime().Equal(mod) {
		f.Close()
		return nil, fmt.Errorf("peerdrop: %s changed or is gone since it was offered", p)
	}
	return f, nil
}

// unchanged checks that the file at p is still the one offered (see
// openUnchanged), before a device is connected.
func (n *Node) unchanged(p string, size int64, mod time.Time) error {
	f, err := n.openUnchanged(p, size, mod)
	if err == nil {
		f.Close()
	}
	return err
}
