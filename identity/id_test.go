package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestIDRoundTrip(t *testing.T) {
	acct, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := acct.ID().String()
	if len(s) != 56+6 || strings.Count(s, "-") != 6 {
		t.Fatalf("unexpected form %q", s)
	}
	got, err := ParseAccountID(s)
	if err != nil || got != acct.ID() {
		t.Fatalf("ParseAccountID(%q) = %v, %v", s, got, err)
	}
	// Copy/paste damage that must be tolerated.
	mangled := []string{
		strings.ToUpper(s),
		strings.ReplaceAll(s, "-", ""),
		strings.ReplaceAll(s, "-", " "),
		"  " + strings.ReplaceAll(s, "-", "\r\n") + "\n",
		strings.NewReplacer("o", "0", "l", "1", "b", "8").Replace(s),
	}
	for _, m := range mangled {
		if got, err := ParseAccountID(m); err != nil || got != acct.ID() {
			t.Errorf("ParseAccountID(%q) = %v, %v", m, got, err)
		}
	}
}

func TestIDTypoDetected(t *testing.T) {
	acct, _ := NewAccount(nil)
	s := acct.ID().String()
	alphabet := "abcdefghijklmnopqrstuvwxyz234567"
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		for _, c := range alphabet {
			if byte(c) == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := ParseAccountID(typo); !errors.Is(err, ErrInvalidID) {
				// The last character carries only 3 bits of data padding;
				// some substitutions there are decoding-invisible only if
				// the checksum still matches, which must never happen.
				t.Fatalf("typo at %d (%q) accepted", i, typo)
			}
		}
	}
	// Swapped adjacent characters.
	b := []byte(strings.ReplaceAll(s, "-", ""))
	for i := 0; i+1 < len(b); i++ {
		if b[i] == b[i+1] {
			continue
		}
		c := append([]byte(nil), b...)
		c[i], c[i+1] = c[i+1], c[i]
		if _, err := ParseAccountID(string(c)); err == nil {
			t.Fatalf("transposition at %d accepted", i)
		}
	}
}

func TestIDKindsDiffer(t *testing.T) {
	acct, _ := NewAccount(nil)
	dev, err := acct.NewDevice(nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAccountID(dev.ID().String()); err == nil || !strings.Contains(err.Error(), "device ID") {
		t.Fatalf("device ID parsed as account ID: %v", err)
	}
	if _, err := ParseDeviceID(acct.ID().String()); err == nil || !strings.Contains(err.Error(), "account ID") {
		t.Fatalf("account ID parsed as device ID: %v", err)
	}
	if got, err := ParseDeviceID(dev.ID().String()); err != nil || got != dev.ID() {
		t.Fatalf("ParseDeviceID: %v %v", got, err)
	}
}

func TestIDGarbage(t *testing.T) {
	for _, s := range []string{"", "abc", strings.Repeat("a", 56), strings.Repeat("a", 57), "!!!!", strings.Repeat("-", 1000), "é" + strings.Repeat("a", 55)} {
		if _, err := ParseAccountID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseAccountID(%q) err = %v", s, err)
		}
	}
}

func TestIDText(t *testing.T) {
	acct, _ := NewAccount(nil)
	b, _ := acct.ID().MarshalText()
	var id AccountID
	if err := id.UnmarshalText(b); err != nil || id != acct.ID() {
		t.Fatal(err)
	}
	if err := id.UnmarshalText([]byte("nope")); err == nil {
		t.Fatal("accepted garbage")
	}
}

func FuzzParseID(f *testing.F) {
	acct, _ := NewAccount(nil)
	f.Add(acct.ID().String())
	f.Add("")
	f.Add(strings.Repeat("z", 56))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseAccountID(s)
		if err != nil {
			return
		}
		// Anything accepted must round-trip to an equivalent ID.
		again, err := ParseAccountID(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q failed: %v", s, err)
		}
	})
}
