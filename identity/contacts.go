package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxContactName bounds a contact's display name, in bytes.
const MaxContactName = 128

// ErrNoContact means the account ID is not in the contacts list.
var ErrNoContact = errors.New("identity: not a contact")

// Contact is an account this account trusts, with a local display name.
type Contact struct {
	ID    AccountID `json:"id"`
	Name  string    `json:"name"`
	Added time.Time `json:"added"`
}

type contactsJSON struct {
	Version  int       `json:"version"`
	Contacts []Contact `json:"contacts"`
}

// CleanName trims a display name, drops control characters and bounds its
// length to max bytes (cut at a character boundary).
func CleanName(name string, max int) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	name = strings.TrimSpace(name)
	for len(name) > max {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// Contacts returns the trusted accounts, sorted by name then ID.
func (s *Store) Contacts() ([]Contact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadContacts()
}

func (s *Store) loadContacts() ([]Contact, error) {
	var cj contactsJSON
	if err := s.readJSON(contactsFile, &cj, &cj.Version); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // no contacts yet
		}
		return nil, err
	}
	return cj.Contacts, nil
}

func (s *Store) saveContacts(cs []Contact) error {
	slices.SortFunc(cs, func(a, b Contact) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	data, err := json.MarshalIndent(contactsJSON{Version: storeVersion, Contacts: cs}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(contactsFile), data)
}

// AddContact trusts the account id under name. Adding a known account
// renames it. Returns the stored contact.
func (s *Store) AddContact(id AccountID, name string) (Contact, error) {
	if id.IsZero() {
		return Contact{}, fmt.Errorf("%w: zero account ID", ErrInvalidID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := s.loadContacts()
	if err != nil {
		return Contact{}, err
	}
	c := Contact{ID: id, Name: CleanName(name, MaxContactName), Added: s.now().UTC().Truncate(time.Second)}
	if i := slices.IndexFunc(cs, func(x Contact) bool { return x.ID == id }); i >= 0 {
		c.Added = cs[i].Added
		cs[i] = c
	} else {
		cs = append(cs, c)
	}
	return c, s.saveContacts(cs)
}

// RemoveContact stops trusting id. It returns ErrNoContact if id was not a
// contact.
func (s *Store) RemoveContact(id AccountID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := s.loadContacts()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cs, func(x Contact) bool { return x.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNoContact, id.Short())
	}
	return s.saveContacts(slices.Delete(cs, i, i+1))
}

// Contact returns the contact with account id, or ErrNoContact.
func (s *Store) Contact(id AccountID) (Contact, error) {
	cs, err := s.Contacts()
	if err != nil {
		return Contact{}, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, nil
		}
	}
	return Contact{}, fmt.Errorf("%w: %s", ErrNoContact, id.Short())
}

// FindContact resolves what a user typed: a printable account ID, a
// contact string (see ContactString), or a contact name (case-insensitive,
// must be unambiguous).
func (s *Store) FindContact(query string) (Contact, error) {
	if id, _, err := ParseContactString(query); err == nil {
		c, err := s.Contact(id)
		if errors.Is(err, ErrNoContact) {
			return Contact{ID: id}, err
		}
		return c, err
	}
	cs, err := s.Contacts()
	if err != nil {
		return Contact{}, err
	}
	var found []Contact
	for _, c := range cs {
		if strings.EqualFold(c.Name, strings.TrimSpace(query)) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Contact{}, fmt.Errorf("%w: no contact named %q", ErrNoContact, query)
	default:
		return Contact{}, fmt.Errorf("identity: %d contacts are named %q; use the account ID", len(found), query)
	}
}
