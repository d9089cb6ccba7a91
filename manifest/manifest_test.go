package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path string, size int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), size), mode); err != nil {
		t.Fatal(err)
	}
}

func TestBuildEncodeDecode(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "photos", "a.jpg"), 10, 0o600)
	write(t, filepath.Join(dir, "photos", "2026", "b.jpg"), 20, 0o600)
	write(t, filepath.Join(dir, "photos", "run.sh"), 5, 0o700)
	os.MkdirAll(filepath.Join(dir, "photos", "empty"), 0o700)
	os.Symlink("/etc/passwd", filepath.Join(dir, "photos", "link"))
	write(t, filepath.Join(dir, "report.pdf"), 7, 0o600)
	m, src, skipped, err := Build(filepath.Join(dir, "photos"), filepath.Join(dir, "report.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0].Why, "symbolic link") {
		t.Fatalf("skipped %+v", skipped)
	}
	s := m.Summary()
	if s.Files != 4 || s.Bytes != 42 || strings.Join(s.Tops, ",") != "photos/,report.pdf" {
		t.Fatalf("summary %+v", s)
	}
	paths := map[string]Entry{}
	for i, e := range m.Entries {
		paths[e.Path] = e
		if e.Dir != (src[i] == "") {
			t.Fatalf("entry %d: source %q", i, src[i])
		}
	}
	if !paths["photos/empty"].Dir || !paths["photos/run.sh"].Exec || paths["photos/a.jpg"].Exec || paths["photos/2026/b.jpg"].Size != 20 {
		t.Fatalf("entries %+v", m.Entries)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(buf.Bytes()), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Entries {
		a, b := m.Entries[i], got.Entries[i]
		if a.Path != b.Path || a.Dir != b.Dir || a.Size != b.Size || a.Exec != b.Exec || !a.ModTime.Equal(b.ModTime) {
			t.Fatalf("entry %d: %+v, decoded %+v", i, a, b)
		}
	}
	// Bad encodings.
	enc := buf.Bytes()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), enc[4:]...),
		"version":   append(append([]byte("PDMF"), 2), enc[5:]...),
		"truncated": enc[:len(enc)-3],
		"trailing":  append(append([]byte(nil), enc...), 0),
		"count":     append(append([]byte("PDMF\x01"), 0xff, 0xff, 0xff, 0xff), enc[9:]...),
		"flags":     append(append([]byte(nil), enc[:9]...), append([]byte{0x80}, enc[10:]...)...),
	} {
		if _, err := Decode(bytes.NewReader(b), 0); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Decode(bytes.NewReader(enc), int64(len(enc)-1)); !errors.Is(err, ErrFormat) {
		t.Errorf("longer than allowed: %v", err)
	}
	// Same top-level name twice.
	write(t, filepath.Join(dir, "other", "report.pdf"), 1, 0o600)
	if _, _, _, err := Build(filepath.Join(dir, "report.pdf"), filepath.Join(dir, "other", "report.pdf")); err == nil {
		t.Fatal("two tops of the same name")
	}
}

func plan(paths ...string) (*Layout, []Entry, error) {
	var m Manifest
	for _, p := range paths {
		e := Entry{Path: p, Size: 1}
		if strings.HasSuffix(p, "/") {
			e = Entry{Path: strings.TrimSuffix(p, "/"), Dir: true}
		}
		m.Entries = append(m.Entries, e)
	}
	l, err := Plan(&m)
	return l, m.Entries, err
}

func TestPlanRejects(t *testing.T) {
	long := strings.Repeat("a", MaxNameBytes+1)
	deep := strings.Repeat("d/", MaxDepth) + "f"
	for _, c := range [][]string{
		{"../etc/passwd"}, {"a/../../b"}, {"/etc/passwd"}, {"a//b"}, {"a/./b"}, {"a\\..\\b"}, {"a\x00b"},
		{""}, {"x/" + long}, {deep}, {"dup", "dup"}, {"a", "a/b"}, {"a/b", "a"}, {"a/b", "a/b/c"},
	} {
		if _, _, err := plan(c...); !errors.Is(err, ErrUnsafe) {
			t.Errorf("%q: %v", c, err)
		}
	}
}

func TestPlanRenames(t *testing.T) {
	l, _, err := plan("Photos/A.jpg", "Photos/a.jpg", "photos/x", "Photos/caf\u00e9", "Photos/cafe\u0301",
		"Photos/CON.txt", "Photos/trail. ", "Photos/\u202egpj.exe", "empty/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Photos/A.jpg", "Photos/a (2).jpg", "photos (2)/x", "Photos/caf\u00e9", "Photos/caf\u00e9 (2)",
		"Photos/_CON.txt", "Photos/trail", "Photos/gpj.exe", "empty"}
	for i, w := range want {
		if got := filepath.ToSlash(l.Local[i]); got != w {
			t.Errorf("entry %d: %q, want %q", i, got, w)
		}
	}
	if strings.Join(l.Tops, ",") != "Photos,photos (2),empty" || l.Renamed != 6 {
		t.Fatalf("tops %q, renamed %d", l.Tops, l.Renamed)
	}
}

func TestPlace(t *testing.T) {
	dl := t.TempDir()
	os.Mkdir(filepath.Join(dl, "photos"), 0o700)
	write(t, filepath.Join(dl, "photos", "mine.jpg"), 1, 0o600)
	write(t, filepath.Join(dl, "notes.txt"), 1, 0o600)
	l, entries, err := plan("photos/a.jpg", "photos/sub/b.jpg", "photos/empty/", "notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	paths, err := l.Place(dl, entries)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"photos (1)/a.jpg", "photos (1)/sub/b.jpg", "photos (1)/empty", "notes (1).txt"}
	for i, w := range want {
		if paths[i] != filepath.Join(dl, w) {
			t.Errorf("entry %d: %s, want %s", i, paths[i], w)
		}
	}
	if fi, err := os.Stat(paths[2]); err != nil || !fi.IsDir() {
		t.Fatalf("empty folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dl, "photos", "mine.jpg")); err != nil {
		t.Fatal("the existing folder was touched")
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	(&Manifest{Entries: []Entry{{Path: "a/b", Size: 3, ModTime: time.Unix(1, 0)}, {Path: "a/c", Dir: true}, {Path: "x", Exec: true}}}).Encode(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("PDMF\x01\x00\x00\x00\x01\x00\x00\x02..\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	dl := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		l, err := Plan(m)
		if err != nil {
			return
		}
		for i, p := range l.Local {
			full := filepath.Join(dl, p)
			if !within(dl, full) || filepath.IsAbs(p) || strings.Contains(filepath.ToSlash(p), "../") || p == ".." {
				t.Fatalf("entry %d (%q) leaves the folder: %q", i, m.Entries[i].Path, p)
			}
		}
	})
}

// TestGolden pins the version 1 encoding byte for byte.
func TestGolden(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Path: "photos/a.jpg", Size: 3, ModTime: time.Unix(1, 2)},
		{Path: "photos/empty", Dir: true, ModTime: time.Unix(0, 0)},
		{Path: "run.sh", Size: 1, Exec: true, ModTime: time.Unix(0, 5)},
	}}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	const want = "50444d4601" + "00000003" +
		"00" + "000c" + "70686f746f732f612e6a7067" + "0000000000000003" + "000000003b9aca02" +
		"01" + "000c" + "70686f746f732f656d707479" + "0000000000000000" + "0000000000000000" +
		"02" + "0006" + "72756e2e7368" + "0000000000000001" + "0000000000000005"
	if got := fmt.Sprintf("%x", buf.Bytes()); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}
