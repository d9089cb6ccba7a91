package identity

import (
	"errors"
	"strings"
	"testing"
)

func TestContactString(t *testing.T) {
	acct, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "Bob", "Zoë & Co?name=x#frag", "  spaced  "} {
		s := ContactString(acct.ID(), name)
		id, got, err := ParseContactString(s)
		if err != nil || id != acct.ID() || got != CleanName(name, MaxContactName) {
			t.Errorf("%q → %q: %v %q %v", name, s, id, got, err)
		}
	}
	if id, name, err := ParseContactString(strings.ToUpper(acct.ID().String())); err != nil || id != acct.ID() || name != "" {
		t.Errorf("bare ID: %v %q %v", id, name, err)
	}
	for _, bad := range []string{"", "peerdrop:", "peerdrop:nonsense", "bob", ContactScheme + acct.ID().String()[:20],
		ContactScheme + AccountID{}.String()} {
		if _, _, err := ParseContactString(bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseContactString: a contact string comes from another person; any
// text either fails cleanly or gives a non-zero ID and a clean, bounded name.
func FuzzParseContactString(f *testing.F) {
	acct, _ := NewAccount(nil)
	f.Add(ContactString(acct.ID(), "Bob"))
	f.Add(acct.ID().String())
	f.Add(ContactScheme + acct.ID().String() + "?name=%ZZ")
	f.Add("peerdrop:?name=x")
	f.Fuzz(func(t *testing.T, s string) {
		id, name, err := ParseContactString(s)
		if err != nil {
			return
		}
		if id.IsZero() {
			t.Fatalf("%q: zero ID accepted", s)
		}
		if name != CleanName(name, MaxContactName) {
			t.Fatalf("%q: name %q is not clean", s, name)
		}
	})
}
