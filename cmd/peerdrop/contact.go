package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop/identity"
)

// parseContact reads a contact string or a bare account ID.
func parseContact(s string) (identity.AccountID, string, error) {
	id, name, err := identity.ParseContactString(s)
	if err != nil {
		return id, "", usageErr("%q is not a contact string (peerdrop:ID?name=NAME) or an account ID: %v", s, err)
	}
	return id, name, nil
}

func (a *app) contactCommand() *cobra.Command {
	c := &cobra.Command{Use: "contact", Short: "Add, list and remove the people you exchange files with", Args: cobra.NoArgs}
	var name string
	add := &cobra.Command{
		Use:   "add CONTACT",
		Short: "Trust a contact: their devices may send you files, and you may send to them",
		Long: `add trusts the account in CONTACT, a contact string (peerdrop:ID?name=NAME, as
printed by their peerdrop init or peerdrop id) or a bare account ID. Both of you
add each other. A running peerdrop recv picks the change up within a minute.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, fromString, err := parseContact(args[0])
			if err != nil {
				return err
			}
			st, err := a.store()
			if err != nil {
				return err
			}
			if acct, _, err := st.Load(); err == nil && acct.ID() == id {
				return usageErr("that is your own account: devices of one account share files through device import, not contacts")
			}
			if name == "" {
				name = fromString
			}
			if name == "" {
				name = id.Short()
			}
			ct, err := st.AddContact(id, name)
			if err != nil {
				return err
			}
			a.contactsChanged()
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "contact", "id": ct.ID, "name": ct.Name, "added": ct.Added})
				return nil
			}
			a.printf("Added %s (%s)\n", ct.Name, ct.ID)
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "the name you know them by (default: the name in the contact string)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List your contacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			cs, err := st.Contacts()
			if err != nil {
				return err
			}
			for _, ct := range cs {
				if a.opt.json {
					a.emitJSON(map[string]any{"event": "contact", "id": ct.ID, "name": ct.Name, "added": ct.Added})
				} else {
					a.printf("%-24s %s  added %s\n", ct.Name, ct.ID, ct.Added.Local().Format("2006-01-02"))
				}
			}
			if len(cs) == 0 {
				a.notef("no contacts yet: peerdrop contact add CONTACT-STRING\n")
			}
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME|ID",
		Short: "Stop trusting a contact: their requests are dropped from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, ct, err := a.contact(args[0])
			if err != nil {
				return err
			}
			if err := st.RemoveContact(ct.ID); err != nil {
				return err
			}
			a.contactsChanged()
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "contact_removed", "id": ct.ID, "name": ct.Name})
				return nil
			}
			a.printf("Removed %s (%s)\n", ct.Name, ct.ID)
			return nil
		},
	}
	c.AddCommand(add, list, remove)
	return c
}

// contact opens the key store and finds a contact in it.
func (a *app) contact(query string) (*identity.Store, identity.Contact, error) {
	st, err := a.store()
	if err != nil {
		return nil, identity.Contact{}, err
	}
	ct, err := findContact(st, query)
	return st, ct, err
}

// findContact finds a contact by name, account ID or contact string, and
// says which query found none.
func findContact(st *identity.Store, query string) (identity.Contact, error) {
	ct, err := st.FindContact(query)
	if errors.Is(err, identity.ErrNoContact) {
		return ct, fmt.Errorf("no contact %q: %w", query, identity.ErrNoContact)
	}
	return ct, err
}
