package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

// parseContact reads a contact string or a bare account ID.
func parseContact(s string) (identity.AccountID, string, error) {
	id, name, err := identity.ParseContactString(s)
	if err != nil {
		return id, "", usageErr("%q is not a contact string (peerdrop:ID?name=NAME) or an account ID: %v", s, err)
	}
	return id, name, nil
}

// store opens the home's key store and checks it is initialized.
func (a *app) store() (*identity.Store, error) {
	st, err := peerdrop.OpenStore(a.home)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, peerdrop.ErrNotInitialized
		}
		return nil, err
	}
	if !st.Initialized() {
		return nil, peerdrop.ErrNotInitialized
	}
	return st, nil
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

func (a *app) deviceCommand() *cobra.Command {
	c := &cobra.Command{Use: "device", Short: "Add your other devices to your account, list or revoke them", Args: cobra.NoArgs}
	var passFile string
	var force bool
	export := &cobra.Command{
		Use:   "export FILE",
		Short: "Write your account and contacts to a password-protected FILE, for device import on another device",
		Long: `export writes the account key and your contacts into FILE, encrypted with a
password (asked on the terminal, or read from --password-file or PEERDROP_PASSWORD).
Carry FILE to your other device and run peerdrop device import FILE there. Anyone
with FILE and the password can act as you: delete FILE after the import.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			if _, err := os.Stat(args[0]); err == nil && !force {
				return usageErr("%s exists; use --force to replace it", args[0])
			}
			pw, err := a.password(passFile, true)
			if err != nil {
				return err
			}
			archive, err := st.Export(pw, nil)
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], archive, 0o600); err != nil {
				return err
			}
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "exported", "file": args[0], "bytes": len(archive)})
				return nil
			}
			a.printf("Account exported to %s. On your other device: peerdrop device import %s\n", args[0], filepath.Base(args[0]))
			return nil
		},
	}
	export.Flags().StringVar(&passFile, "password-file", "", "read the password from this file (first line)")
	export.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")

	var devName string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Make this device a new device of the account in FILE (from device export)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			archive, err := readBounded(args[0], 1<<20)
			if err != nil {
				return err
			}
			pw, err := a.password(passFile, false)
			if err != nil {
				return err
			}
			acct, dev, err := peerdrop.Join(a.home, archive, pw, identity.CleanName(devName, 64))
			if errors.Is(err, identity.ErrExists) {
				return withHint(exitError, fmt.Errorf("%s already holds an account", a.home), "use another --home for this device")
			}
			if err != nil {
				return err
			}
			if err := writeConfigTemplate(filepath.Join(a.home, configFile), a.name); err != nil {
				return err
			}
			devs, perr := a.accountDevices()
			if a.opt.json {
				ev := map[string]any{"event": "imported", "account": acct, "device": dev, "device_name": devName, "devices": deviceJSON(devs, dev)}
				if perr != nil {
					ev["devices_error"] = perr.Error()
				}
				a.emitJSON(ev)
				return nil
			}
			a.printf("This device (%s, %s) joined account %s.\n", devName, dev, acct)
			if perr != nil {
				a.printf("The device list is not published yet (%v); it will be the next time peerdrop runs with a DHT.\n", perr)
				return nil
			}
			a.printf("Devices of the account:\n")
			printDevices(a, devs, dev)
			return nil
		},
	}
	imp.Flags().StringVar(&passFile, "password-file", "", "read the password from this file (first line)")
	imp.Flags().StringVar(&devName, "device", defaultDeviceName(), "this device's name, as shown to your contacts")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the devices of your account (as published in the DHT)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			_, dev, err := st.Load()
			if err != nil {
				return err
			}
			devs, err := a.accountDevices()
			if err != nil {
				return err
			}
			if a.opt.json {
				for _, d := range deviceJSON(devs, dev.ID()) {
					d["event"] = "device"
					a.emitJSON(d)
				}
				return nil
			}
			printDevices(a, devs, dev.ID())
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Remove a device (a lost phone) from your account's device list",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.store(); err != nil {
				return err
			}
			n, err := a.openNode(nil)
			if err != nil {
				return err
			}
			defer n.Close()
			ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
			defer cancel()
			devs, err := n.PublishDevices(ctx)
			if err != nil {
				return err
			}
			var found []signaling.DeviceEntry
			for _, d := range devs {
				if strings.EqualFold(d.Name, args[0]) || d.Device.String() == args[0] || strings.HasPrefix(d.Device.String(), args[0]) && len(args[0]) >= 8 {
					found = append(found, d)
				}
			}
			switch {
			case len(found) == 0:
				return withHint(exitUnknown, fmt.Errorf("no device %q in your account", args[0]), "see peerdrop device list")
			case len(found) > 1:
				return usageErr("%d devices match %q; give the device ID", len(found), args[0])
			case found[0].Device == n.Device():
				return usageErr("this is the device you are on; revoke it from another device of yours")
			}
			if err := n.RevokeDevice(ctx, found[0].Device); err != nil {
				return err
			}
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "revoked", "device": found[0].Device, "name": found[0].Name})
				return nil
			}
			a.printf("Revoked %s (%s). It can no longer receive files sent to you.\n", found[0].Name, found[0].Device)
			return nil
		},
	}
	c.AddCommand(export, imp, list, revoke)
	return c
}

// password reads the archive password: from a file, PEERDROP_PASSWORD, the
// terminal (twice when confirm), or a line of stdin.
func (a *app) password(file string, confirm bool) ([]byte, error) {
	var pw string
	switch {
	case file != "":
		b, err := readBounded(file, 4096)
		if err != nil {
			return nil, err
		}
		pw, _, _ = strings.Cut(string(b), "\n")
	case os.Getenv("PEERDROP_PASSWORD") != "":
		pw = os.Getenv("PEERDROP_PASSWORD")
	default:
		if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(a.stderr, "Password: ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(a.stderr)
			if err != nil {
				return nil, err
			}
			pw = string(b)
			if confirm {
				fmt.Fprint(a.stderr, "Again: ")
				b2, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(a.stderr)
				if err != nil {
					return nil, err
				}
				if string(b2) != pw {
					return nil, usageErr("the passwords differ")
				}
			}
		} else {
			line, err := a.in.ReadString('\n')
			if err != nil && line == "" {
				return nil, usageErr("no password: give --password-file, PEERDROP_PASSWORD or type it")
			}
			pw = line
		}
	}
	pw = strings.TrimRight(pw, "\r\n")
	if len(pw) < 8 {
		return nil, usageErr("the password must have at least 8 characters")
	}
	return []byte(pw), nil
}

// readBounded reads a small file, refusing one larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), max)
	}
	return os.ReadFile(path)
}
