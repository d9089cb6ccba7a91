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

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

func (a *app) deviceCommand() *cobra.Command {
	c := &cobra.Command{Use: "device", Short: "Add your other devices to your account, list or revoke them", Args: cobra.NoArgs}
	c.AddCommand(a.deviceExportCommand(), a.deviceImportCommand(), a.deviceListCommand(), a.deviceRevokeCommand())
	return c
}

// deviceExportCommand is "device export FILE".
func (a *app) deviceExportCommand() *cobra.Command {
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
	return export
}

// deviceImportCommand is "device import FILE".
func (a *app) deviceImportCommand() *cobra.Command {
	var passFile, devName string
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
	return imp
}

// deviceListCommand is "device list".
func (a *app) deviceListCommand() *cobra.Command {
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
	return list
}

// deviceRevokeCommand is "device revoke NAME|ID".
func (a *app) deviceRevokeCommand() *cobra.Command {
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
	return revoke
}
