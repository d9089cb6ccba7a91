package identity

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestStoreInitLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(); !errors.Is(err, ErrNotInitialized) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load on empty store: %v", err)
	}
	acct, dev, err := s.Init("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Init("again"); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v", err)
	}
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	acct2, dev2, err := s2.Load()
	if err != nil {
		t.Fatal(err)
	}
	if acct2.ID() != acct.ID() || dev2.ID() != dev.ID() || dev2.Name != "laptop" {
		t.Fatal("reloaded identity differs")
	}
	if !bytes.Equal(dev2.Cert().Raw, dev.Cert().Raw) || !dev2.SealingKey().Equal(dev.SealingKey()) {
		t.Fatal("reloaded keys differ")
	}
	if runtime.GOOS != "windows" {
		for _, name := range []string{accountFile, deviceFile} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s mode %v err %v", name, st.Mode(), err)
			}
		}
		st, _ := os.Stat(dir)
		if st.Mode().Perm() != 0o700 {
			t.Fatalf("dir mode %v", st.Mode())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestStoreBadPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits are not used on Windows")
	}
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	if _, _, err := s.Init("d"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, accountFile)
	os.Chmod(p, 0o644)
	var pe *PermissionError
	if _, _, err := s.Load(); !errors.As(err, &pe) || pe.Path != p {
		t.Fatalf("Load with 0644 key: %v", err)
	}
	if !strings.Contains(pe.Error(), "chmod") {
		t.Fatalf("error gives no hint: %v", pe)
	}
	os.Chmod(p, 0o600)
	os.Chmod(dir, 0o755)
	if _, err := OpenStore(dir); !errors.As(err, &pe) {
		t.Fatalf("OpenStore on 0755 dir: %v", err)
	}
}

func TestStoreCorrupt(t *testing.T) {
	for _, tc := range []struct {
		file, content string
	}{
		{accountFile, "{not json"},
		{accountFile, `{"version":1,"key":"AAAA"}`},
		{accountFile, `{"version":9,"key":"AAAA"}`},
		{deviceFile, "garbage"},
		{deviceFile, `{"version":1,"signing_key":"` + strings.Repeat("A", 43) + `=","sealing_key":"","cert":""}`},
	} {
		dir := t.TempDir()
		s, _ := OpenStore(dir)
		if _, _, err := s.Init("d"); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o600)
		if _, _, err := s.Load(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s = %q: got %v, want ErrCorrupt", tc.file, tc.content, err)
		}
	}
}

func TestStoreDeviceFromOtherAccount(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, _ := OpenStore(dirA)
	b, _ := OpenStore(dirB)
	a.Init("a")
	b.Init("b")
	data, _ := os.ReadFile(filepath.Join(dirB, deviceFile))
	os.WriteFile(filepath.Join(dirA, deviceFile), data, 0o600)
	if _, _, err := a.Load(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("device of another account loaded: %v", err)
	}
}

func TestContacts(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	bob, _ := NewAccount(nil)
	carol, _ := NewAccount(nil)
	if cs, err := s.Contacts(); err != nil || len(cs) != 0 {
		t.Fatal(cs, err)
	}
	if _, err := s.AddContact(bob.ID(), "  Bob\x1b[31m\u202e "); err != nil {
		t.Fatal(err)
	}
	s.AddContact(carol.ID(), "Carol")
	c, err := s.Contact(bob.ID())
	if err != nil || c.Name != "Bob[31m" {
		t.Fatalf("contact %q %v", c.Name, err)
	}
	if _, err := s.AddContact(bob.ID(), "Robert"); err != nil {
		t.Fatal(err)
	}
	cs, _ := s.Contacts()
	if len(cs) != 2 || cs[0].Name != "Carol" || cs[1].Name != "Robert" {
		t.Fatalf("contacts %+v", cs)
	}
	if got, err := s.FindContact("robert"); err != nil || got.ID != bob.ID() {
		t.Fatal(got, err)
	}
	if got, err := s.FindContact(carol.ID().String()); err != nil || got.Name != "Carol" {
		t.Fatal(got, err)
	}
	if got, err := s.FindContact(ContactString(carol.ID(), "whatever she calls herself")); err != nil || got.Name != "Carol" {
		t.Fatal(got, err)
	}
	if _, err := s.FindContact("nobody"); !errors.Is(err, ErrNoContact) {
		t.Fatal(err)
	}
	if err := s.RemoveContact(bob.ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveContact(bob.ID()); !errors.Is(err, ErrNoContact) {
		t.Fatal(err)
	}
	if _, err := s.Contact(bob.ID()); !errors.Is(err, ErrNoContact) {
		t.Fatal(err)
	}
	if _, err := s.AddContact(AccountID{}, "zero"); !errors.Is(err, ErrInvalidID) {
		t.Fatal(err)
	}
}

func TestCleanNameLength(t *testing.T) {
	n := CleanName(strings.Repeat("é", 100), 9)
	if n != "éééé" {
		t.Fatalf("%q", n)
	}
}
