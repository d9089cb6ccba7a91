package mobile

import (
	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
)

// Contact is a person this account exchanges files with.
type Contact struct {
	ID        string // account ID
	Name      string
	AddedUnix int64 // seconds since 1970
}

// ContactList is a list of contacts (gomobile binds no slices of structs).
type ContactList struct{ items []*Contact }

// Len is the number of contacts.
func (l *ContactList) Len() int { return len(l.items) }

// Get returns the i-th contact, or nil out of range.
func (l *ContactList) Get(i int) *Contact {
	if i < 0 || i >= len(l.items) {
		return nil
	}
	return l.items[i]
}

func contactOf(c identity.Contact) *Contact {
	return &Contact{ID: c.ID.String(), Name: c.Name, AddedUnix: c.Added.Unix()}
}

// AddContact trusts the account in contact (a contact string, as
// ContactString makes, or a bare account ID) under name (empty: the name
// the contact string suggests). Works started or stopped.
func (n *Node) AddContact(contact, name string) (*Contact, error) {
	id, suggested, err := identity.ParseContactString(contact)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = suggested
	}
	if name == "" {
		name = id.Short()
	}
	var c identity.Contact
	if node := n.running(); node != nil {
		c, err = node.AddContact(id, name)
	} else {
		var st *identity.Store
		if st, err = peerdrop.OpenStore(n.cfg.Home); err == nil {
			c, err = st.AddContact(id, name)
		}
	}
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.names != nil {
		n.names[c.ID] = c.Name
	}
	n.mu.Unlock()
	return contactOf(c), nil
}

// RemoveContact stops trusting a contact (by name, account ID or contact
// string): their requests are dropped from now on.
func (n *Node) RemoveContact(contact string) error {
	st, err := peerdrop.OpenStore(n.cfg.Home)
	if err != nil {
		return err
	}
	c, err := st.FindContact(contact)
	if err != nil {
		return err
	}
	if node := n.running(); node != nil {
		return node.RemoveContact(c.ID)
	}
	return st.RemoveContact(c.ID)
}

// Contacts returns the contacts, sorted by name.
func (n *Node) Contacts() (*ContactList, error) {
	st, err := peerdrop.OpenStore(n.cfg.Home)
	if err != nil {
		return nil, err
	}
	cs, err := st.Contacts()
	if err != nil {
		return nil, err
	}
	l := &ContactList{}
	for _, c := range cs {
		l.items = append(l.items, contactOf(c))
	}
	return l, nil
}
