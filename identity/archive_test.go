package identity

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

var fastKDF = &KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func TestArchiveJoin(t *testing.T) {
	s1, _ := OpenStore(t.TempDir())
	acct, dev1, err := s1.Init("phone")
	if err != nil {
		t.Fatal(err)
	}
	friend, _ := NewAccount(nil)
	s1.AddContact(friend.ID(), "Friend")
	pw := []byte("correct horse battery")
	ar, err := s1.Export(pw, fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := OpenStore(t.TempDir())
	if _, _, err := s2.Join(ar, []byte("wrong password!"), "laptop"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	acct2, dev2, err := s2.Join(ar, pw, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if acct2.ID() != acct.ID() {
		t.Fatal("joined another account")
	}
	if dev2.ID() == dev1.ID() {
		t.Fatal("joined device reuses the first device's key")
	}
	if _, err := VerifyDeviceCertFor(dev2.Cert().Raw, acct.ID(), dev2.ID(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if c, err := s2.Contact(friend.ID()); err != nil || c.Name != "Friend" {
		t.Fatal("contacts not carried", err)
	}
	if _, _, err := s2.Join(ar, pw, "again"); !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
}

func TestArchiveHostile(t *testing.T) {
	acct, _ := NewAccount(nil)
	pw := []byte("password1234")
	if _, err := ExportAccount(acct, nil, []byte("short"), fastKDF); !errors.Is(err, ErrWeakPassword) {
		t.Fatal(err)
	}
	ar, err := ExportAccount(acct, nil, pw, fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), ar...)) }
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":         {nil, ErrCorrupt},
		"magic":         {mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrCorrupt},
		"version":       {mod(func(b []byte) []byte { b[4] = 9; return b }), ErrCorrupt},
		"kdf":           {mod(func(b []byte) []byte { b[5] = 9; return b }), ErrCorrupt},
		"huge memory":   {mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[10:], 1<<30); return b }), ErrCorrupt},
		"huge time":     {mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[6:], 1<<20); return b }), ErrCorrupt},
		"zero threads":  {mod(func(b []byte) []byte { b[14] = 0; return b }), ErrCorrupt},
		"header edited": {mod(func(b []byte) []byte { b[20] ^= 1; return b }), ErrBadPassword},
		"body edited":   {mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadPassword},
		"truncated":     {ar[:len(ar)-20], ErrBadPassword},
		"oversize":      {make([]byte, MaxArchiveSize+1), ErrCorrupt},
	}
	for name, tc := range cases {
		if _, _, err := ImportAccount(tc.data, pw); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	got, _, err := ImportAccount(ar, pw)
	if err != nil || got.ID() != acct.ID() {
		t.Fatal(err)
	}
}
