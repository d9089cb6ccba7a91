package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/peerdrop/peerdrop/transfer"
)

// ErrUnsafe is a manifest whose paths no renaming can make safe.
var ErrUnsafe = errors.New("manifest: unsafe")

// Layout is where each entry of a manifest goes, relative to the new
// top-level folders (see Plan).
type Layout struct {
	// Local is each entry's safe relative path (OS separators), in the
	// manifest's order; its first component is one of Tops.
	Local []string
	// Tops are the safe top-level names; Place may rename them again
	// where the download directory has them already.
	Tops []string
	// Renamed counts the entries whose local path differs from the
	// sender's.
	Renamed int
}

// Plan checks the manifest's paths and makes each a safe local one (see
// the package comment): an error wraps ErrUnsafe and names the entry.
func Plan(m *Manifest) (*Layout, error) {
	if len(m.Entries) == 0 || len(m.Entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrUnsafe, len(m.Entries))
	}
	l := &Layout{Local: make([]string, len(m.Entries))}
	root := newDir()
	seen := make(map[string]int, len(m.Entries)) // sender's path → entry
	for i, e := range m.Entries {
		parts, err := split(e.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (%q): %v", ErrUnsafe, i, e.Path, err)
		}
		if j, dup := seen[e.Path]; dup {
			return nil, fmt.Errorf("%w: entries %d and %d are both %q", ErrUnsafe, j, i, e.Path)
		}
		seen[e.Path] = i
		d := root
		local := make([]string, 0, len(parts))
		for k, p := range parts {
			last := k == len(parts)-1
			if last && !e.Dir { // a file
				name, err := d.file(p)
				if err != nil {
					return nil, fmt.Errorf("%w: entry %d (%q): %v", ErrUnsafe, i, e.Path, err)
				}
				local = append(local, name)
				break
			}
			sub, name, err := d.dir(p)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d (%q): %v", ErrUnsafe, i, e.Path, err)
			}
			local = append(local, name)
			d = sub
		}
		l.Local[i] = filepath.Join(local...)
		if filepath.ToSlash(l.Local[i]) != e.Path {
			l.Renamed++
		}
	}
	l.Tops = root.order
	return l, nil
}

// split checks a sender's path and returns its components.
func split(p string) ([]string, error) {
	switch {
	case p == "":
		return nil, errors.New("empty path")
	case len(p) > MaxPathBytes:
		return nil, fmt.Errorf("longer than %d bytes", MaxPathBytes)
	case strings.HasPrefix(p, "/"):
		return nil, errors.New("absolute path")
	case strings.ContainsAny(p, "\\\x00"):
		return nil, errors.New("backslash or NUL in the path")
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxDepth {
		return nil, fmt.Errorf("deeper than %d", MaxDepth)
	}
	for _, c := range parts {
		switch {
		case c == "":
			return nil, errors.New("empty path component")
		case c == "." || c == "..":
			return nil, fmt.Errorf("%q component", c)
		case len(c) > MaxNameBytes:
			return nil, fmt.Errorf("a name longer than %d bytes", MaxNameBytes)
		}
	}
	return parts, nil
}

// dir is one folder of the layout: the local names it holds, by their
// folded form (what a case-insensitive, normalizing file system sees).
type dir struct {
	names map[string]string // sender's name → local name
	taken map[string]bool   // folded local names
	kinds map[string]*dir   // sender's name → sub-folder (nil: a file)
	order []string          // local names in order of appearance
}

func newDir() *dir {
	return &dir{names: map[string]string{}, taken: map[string]bool{}, kinds: map[string]*dir{}}
}

var folder = cases.Fold()

func fold(s string) string { return folder.String(norm.NFC.String(s)) }

// local gives a sender's name a safe local name in d that no other takes.
func (d *dir) local(name string) string {
	safe := norm.NFC.String(transfer.SanitizeName(name))
	ext := filepath.Ext(safe)
	stem := strings.TrimSuffix(safe, ext)
	if stem == "" {
		stem, ext = safe, ""
	}
	cand := safe
	for n := 2; d.taken[fold(cand)]; n++ {
		cand = fmt.Sprintf("%s (%d)%s", stem, n, ext)
	}
	d.taken[fold(cand)] = true
	d.names[name] = cand
	d.order = append(d.order, cand)
	return cand
}

// dir returns the sub-folder of d that name is, making it if new.
func (d *dir) dir(name string) (*dir, string, error) {
	if sub, ok := d.kinds[name]; ok {
		if sub == nil {
			return nil, "", fmt.Errorf("%q is a file and a folder", name)
		}
		return sub, d.names[name], nil
	}
	sub := newDir()
	d.kinds[name] = sub
	return sub, d.local(name), nil
}

// file takes name in d for a file.
func (d *dir) file(name string) (string, error) {
	if _, ok := d.kinds[name]; ok {
		return "", fmt.Errorf("%q is a file and a folder, or twice a file", name)
	}
	d.kinds[name] = nil
	return d.local(name), nil
}

// Place makes the layout's top-level folders in dir, under names nothing
// in dir has (a top-level name taken gets " (1)", " (2)"…: a received
// folder never merges into an existing one), and every folder the
// entries need; it returns each entry's absolute path (empty folders
// included), all inside the new top-level folders or, for a top-level
// file, a fresh name in dir. Files are not created: the transfers write
// them.
func (l *Layout) Place(dir string, entries []Entry) ([]string, error) {
	tops := make(map[string]string, len(l.Tops)) // planned top → placed top
	isDir := map[string]bool{}
	for i, e := range entries {
		top, _, nested := strings.Cut(filepath.ToSlash(l.Local[i]), "/")
		if nested || e.Dir {
			isDir[top] = true
		}
	}
	for _, t := range l.Tops {
		name, err := fresh(dir, t, isDir[t])
		if err != nil {
			return nil, err
		}
		tops[t] = name
	}
	out := make([]string, len(l.Local))
	made := map[string]bool{}
	for i, rel := range l.Local {
		top, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
		p := filepath.Join(dir, tops[top], filepath.FromSlash(rest))
		if !within(dir, p) {
			return nil, fmt.Errorf("%w: %q leaves %s", ErrUnsafe, rel, dir)
		}
		out[i] = p
		parent := filepath.Dir(p)
		if entries[i].Dir {
			parent = p
		}
		if made[parent] {
			continue
		}
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, err
		}
		made[parent] = true
	}
	return out, nil
}

// fresh takes a name in dir nothing has: a folder is made at once (so no
// one else takes it); a file's name is reserved by an empty file the
// transfer replaces.
func fresh(dir, name string, folder bool) (string, error) {
	ext := ""
	stem := name
	if !folder {
		ext = filepath.Ext(name)
		stem = strings.TrimSuffix(name, ext)
	}
	for n := 0; n < 10000; n++ {
		cand := name
		if n > 0 {
			cand = fmt.Sprintf("%s (%d)%s", stem, n, ext)
		}
		p := filepath.Join(dir, cand)
		var err error
		if folder {
			err = os.Mkdir(p, 0o700)
		} else {
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				f.Close()
			}
		}
		switch {
		case err == nil:
			return cand, nil
		case !errors.Is(err, os.ErrExist):
			return "", err
		}
	}
	return "", fmt.Errorf("manifest: no free name for %q in %s", name, dir)
}

// within reports whether p is dir or below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
