package main

import (
	"strings"
	"testing"

	"github.com/peerdrop/peerdrop/identity"
)

func TestContactString(t *testing.T) {
	acct, err := identity.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "Bob", "Zoë & Co?name=x#frag", "  spaced  "} {
		s := contactString(acct.ID(), name)
		id, got, err := parseContact(s)
		if err != nil || id != acct.ID() || got != identity.CleanName(name, identity.MaxContactName) {
			t.Errorf("%q → %q: %v %q %v", name, s, id, got, err)
		}
	}
	// A bare ID, and an ID pasted with spaces and upper case, parse too.
	if id, name, err := parseContact(strings.ToUpper(acct.ID().String())); err != nil || id != acct.ID() || name != "" {
		t.Errorf("bare ID: %v %q %v", id, name, err)
	}
	for _, bad := range []string{"", "peerdrop:", "peerdrop:nonsense", "bob", "peerdrop:" + acct.ID().String()[:20]} {
		if _, _, err := parseContact(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseContact: a contact string comes from another person; any text
// either fails cleanly or gives a valid ID and a clean, bounded name.
func FuzzParseContact(f *testing.F) {
	acct, _ := identity.NewAccount(nil)
	f.Add(contactString(acct.ID(), "Bob"))
	f.Add(acct.ID().String())
	f.Add("peerdrop:" + acct.ID().String() + "?name=%ZZ")
	f.Add("peerdrop:?name=x")
	f.Fuzz(func(t *testing.T, s string) {
		id, name, err := parseContact(s)
		if err != nil {
			return
		}
		if id.IsZero() {
			t.Fatalf("%q: zero ID accepted", s)
		}
		if name != identity.CleanName(name, identity.MaxContactName) {
			t.Fatalf("%q: name %q is not clean", s, name)
		}
	})
}
