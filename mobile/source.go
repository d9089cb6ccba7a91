package mobile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/peerdrop/peerdrop"
)

// SourceOpener opens the files the app reads itself, named by URIs:
// SendFile and SendFiles take them ("content://…") beside paths, so an
// Android app sends from a content URI without copying it first. Open is
// called when the file is offered, for each device's delivery, and again
// when a delivery resumes after the app restarts (set the opener before
// Start). Kotlin, with a ContentResolver:
//
//	class Opener(val cr: ContentResolver) : SourceOpener {
//	    override fun open(uri: String): SourceFile {
//	        val u = Uri.parse(uri)
//	        val pfd = cr.openFileDescriptor(u, "r") ?: throw FileNotFoundException(uri)
//	        val name = cr.query(u, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)
//	            ?.use { if (it.moveToFirst()) it.getString(0) else null } ?: "file"
//	        return ContentFile(pfd, name) // ReadAt: FileInputStream(pfd.fileDescriptor).channel.read(buf, offset)
//	    }
//	}
type SourceOpener interface {
	Open(uri string) (SourceFile, error)
}

// SourceFile is one file opened by a SourceOpener.
type SourceFile interface {
	// Name is the name offered to the contact.
	Name() string
	// Size is the file's size in bytes.
	Size() int64
	// ModTimeMillis is the last modification, in milliseconds since
	// 1970, or 0 if unknown. A delivery tried later checks that the size
	// and this time are unchanged.
	ModTimeMillis() int64
	// ReadAt returns up to n bytes from offset: fewer only at the end of
	// the file, none at or past it. It may be called from several threads
	// at once (a positional read, such as FileChannel.read(buf, offset)).
	ReadAt(offset int64, n int) ([]byte, error)
	// Close releases the file.
	Close() error
}

// SetSourceOpener sets (or, with nil, clears) the opener of URIs.
func (n *Node) SetSourceOpener(opener SourceOpener) {
	n.mu.Lock()
	n.opener = opener
	n.mu.Unlock()
}

// open is the peerdrop.Config.Open of the Node: the app's opener.
func (n *Node) open(uri string) (peerdrop.Source, error) {
	n.mu.Lock()
	o := n.opener
	n.mu.Unlock()
	if o == nil {
		return nil, fmt.Errorf("%w (SetSourceOpener): %s", peerdrop.ErrNoOpener, uri)
	}
	f, err := o.Open(uri)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("peerdrop: the opener returned no file for %s", uri)
	}
	return appSource{f}, nil
}

// stat is the FileInfo of path, or of the file the opener opens for a URI.
func (n *Node) stat(path string) (fs.FileInfo, error) {
	if !peerdrop.IsURI(path) {
		return os.Stat(path)
	}
	src, err := n.open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return src.Stat()
}

// appSource is a SourceFile as a peerdrop.Source.
type appSource struct{ f SourceFile }

func (s appSource) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		b, err := s.f.ReadAt(off+int64(done), len(p)-done)
		if len(b) > len(p)-done {
			return done, errors.New("peerdrop: SourceFile.ReadAt returned more than asked")
		}
		done += copy(p[done:], b)
		if err != nil {
			return done, err
		}
		if len(b) == 0 {
			return done, io.EOF
		}
	}
	return done, nil
}

func (s appSource) Close() error { return s.f.Close() }

func (s appSource) Stat() (fs.FileInfo, error) {
	var mod time.Time
	if ms := s.f.ModTimeMillis(); ms != 0 {
		mod = time.UnixMilli(ms)
	}
	return appInfo{name: s.f.Name(), size: s.f.Size(), mod: mod}, nil
}

// appInfo is a SourceFile's fs.FileInfo: a read-only regular file.
type appInfo struct {
	name string
	size int64
	mod  time.Time
}

func (i appInfo) Name() string       { return i.name }
func (i appInfo) Size() int64        { return i.size }
func (i appInfo) Mode() fs.FileMode  { return 0o400 }
func (i appInfo) ModTime() time.Time { return i.mod }
func (i appInfo) IsDir() bool        { return false }
func (i appInfo) Sys() any           { return nil }
