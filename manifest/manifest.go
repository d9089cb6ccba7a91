// Package manifest describes many files and folders offered at once: the
// sender builds a Manifest from paths (Build), encodes it (version 1,
// below), and the receiver decodes it with bounds checked before any
// allocation (Decode), then turns the peer's paths into safe local ones
// under a new folder of its own (Plan, Layout.Place).
//
// # Encoding (version 1)
//
//	magic    "PDMF"
//	version  u8 = 1
//	count    u32 big endian (≤ MaxEntries)
//	entries  count times:
//	    flags  u8: 0x01 directory (an empty one; others are implied by
//	           their files' paths), 0x02 executable; other bits are an error
//	    path   u16 length (1..MaxPathBytes) + UTF-8 bytes, components
//	           separated by '/'
//	    size   u64 (0 for a directory)
//	    mtime  i64 Unix nanoseconds
//
// Trailing bytes, unknown flags, a path that is not UTF-8 and sizes past
// MaxTotalBytes are errors.
//
// # Receiving safely
//
// Plan rejects what no renaming can make safe: absolute paths, "." and
// ".." components, empty components, backslashes and NUL, duplicate
// paths, a file that another entry needs as a folder, paths or names too
// long, too many entries. Everything else is renamed, never trusted:
// each component goes through transfer.SanitizeName (controls, bidi and
// format characters, reserved Windows names, trailing dots), and names
// that would collide in one folder on a case-insensitive or
// Unicode-normalizing file system (macOS, Windows, Android's shared
// storage) get " (2)", " (3)"… Place creates the top-level folders under
// the download directory with names no existing entry has ("photos (1)"),
// so a received folder never merges into an existing one, and every
// path it returns is inside one of them. Symbolic links are never in a
// manifest: Build skips them, and nothing received creates one.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop/transfer"
)

// Limits of a manifest.
const (
	// MaxEntries bounds the files and empty folders of one offer.
	MaxEntries = 100_000
	// MaxPathBytes bounds an entry's path.
	MaxPathBytes = 4096
	// MaxNameBytes bounds one path component.
	MaxNameBytes = 255
	// MaxDepth bounds an entry's number of components.
	MaxDepth = 64
	// MaxTotalBytes bounds the sum of the files' sizes (1 PiB).
	MaxTotalBytes = 1 << 50
	// MaxEncodedBytes bounds an encoded manifest.
	MaxEncodedBytes = 8 + MaxEntries*(1+2+8+8) + 32<<20
)

// Entry is one file, or one empty folder, of an offer.
type Entry struct {
	// Path is relative, with '/' separators; its first component is a
	// top-level name of the offer.
	Path    string
	Dir     bool // an empty folder
	Size    int64
	Exec    bool // the file is executable
	ModTime time.Time
}

// Manifest is what an offer of many files holds.
type Manifest struct {
	Entries []Entry
}

// Summary is what a person decides on.
type Summary struct {
	Tops  []string // top-level names, folders with a trailing '/'
	Files int
	Bytes int64
}

// Summary counts the manifest's files and bytes and lists its top-level
// names in order of first appearance.
func (m *Manifest) Summary() Summary {
	var s Summary
	seen := map[string]bool{}
	for _, e := range m.Entries {
		top, _, nested := strings.Cut(e.Path, "/")
		if nested || e.Dir {
			top += "/"
		}
		if !seen[top] {
			seen[top] = true
			s.Tops = append(s.Tops, top)
		}
		if !e.Dir {
			s.Files++
			s.Bytes += e.Size
		}
	}
	return s
}

// Skipped is a path Build left out, and why.
type Skipped struct {
	Path string
	Why  string
}

// Build makes the manifest of paths (files and folders, walked without
// following symbolic links) and returns, for each entry, its source path
// (empty for a folder). Symbolic links, devices, sockets and pipes are
// left out and listed in skipped. Two paths with the same base name are
// an error: they would be one top-level name.
func Build(paths ...string) (m *Manifest, sources []string, skipped []Skipped, err error) {
	return BuildWith(nil, paths...)
}

// External stats a path that is not of this file system (an Android
// content URI the application reads itself): ok false means p is an
// ordinary path.
type External func(p string) (fi fs.FileInfo, ok bool, err error)

// BuildWith is Build where the paths ext recognizes are files the
// application reads itself: each is one top-level file named by its
// FileInfo's (sanitized) name, with the path itself as its source.
func BuildWith(ext External, paths ...string) (m *Manifest, sources []string, skipped []Skipped, err error) {
	m = &Manifest{}
	tops := map[string]string{}
	var total int64
	add := func(e Entry, src string) error {
		if len(m.Entries) == MaxEntries {
			return fmt.Errorf("manifest: more than %d files and folders", MaxEntries)
		}
		if len(e.Path) > MaxPathBytes {
			return fmt.Errorf("manifest: %s: path longer than %d bytes", src, MaxPathBytes)
		}
		if total += e.Size; total > MaxTotalBytes {
			return errors.New("manifest: more than 1 PiB")
		}
		m.Entries = append(m.Entries, e)
		sources = append(sources, src)
		return nil
	}
	for _, p := range paths {
		if ext != nil {
			fi, ok, err := ext(p)
			if err != nil {
				return nil, nil, nil, err
			}
			if ok {
				top := transfer.SanitizeName(fi.Name())
				if prev, dup := tops[top]; dup {
					return nil, nil, nil, fmt.Errorf("manifest: %s and %s have the same name", prev, p)
				}
				tops[top] = p
				if !fi.Mode().IsRegular() {
					return nil, nil, nil, fmt.Errorf("manifest: %s is not a regular file", p)
				}
				if err := add(Entry{Path: top, Size: fi.Size(), ModTime: fi.ModTime()}, p); err != nil {
					return nil, nil, nil, err
				}
				continue
			}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, nil, err
		}
		fi, err := os.Lstat(abs)
		if err != nil {
			return nil, nil, nil, err
		}
		top := filepath.Base(abs)
		if prev, dup := tops[top]; dup {
			return nil, nil, nil, fmt.Errorf("manifest: %s and %s have the same name", prev, p)
		}
		tops[top] = p
		switch {
		case fi.Mode().IsRegular():
			if err := add(Entry{Path: top, Size: fi.Size(), Exec: fi.Mode()&0o111 != 0, ModTime: fi.ModTime()}, abs); err != nil {
				return nil, nil, nil, err
			}
		case fi.IsDir():
			if err := walk(abs, add, &skipped); err != nil {
				return nil, nil, nil, err
			}
		default:
			skipped = append(skipped, Skipped{Path: abs, Why: whyNot(fi.Mode())})
		}
	}
	if len(m.Entries) == 0 {
		return nil, nil, skipped, errors.New("manifest: nothing to send")
	}
	return m, sources, skipped, nil
}

// walk adds the files and empty folders under the folder abs (named by
// its base name) without following symbolic links, and lists what it
// leaves out.
func walk(abs string, add func(Entry, string) error, skipped *[]Skipped) error {
	return filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(abs), path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			empty, err := isEmptyDir(path)
			if err != nil || !empty {
				return err
			}
			return add(Entry{Path: rel, Dir: true, ModTime: info.ModTime()}, "")
		case info.Mode().IsRegular():
			return add(Entry{Path: rel, Size: info.Size(), Exec: info.Mode()&0o111 != 0, ModTime: info.ModTime()}, path)
		}
		*skipped = append(*skipped, Skipped{Path: path, Why: whyNot(info.Mode())})
		return nil
	})
}

func whyNot(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link (never followed)"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// isEmptyDir reports whether a folder has no entries at all (a folder
// holding only skipped entries is not sent as empty: it is not).
func isEmptyDir(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && (err == nil || errors.Is(err, io.EOF)), nil
}
