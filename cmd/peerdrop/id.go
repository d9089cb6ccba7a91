package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

func (a *app) idCommand() *cobra.Command {
	var offline bool
	c := &cobra.Command{
		Use:   "id",
		Short: "Show your account, this device, your contact string and your account's devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			acct, dev, err := st.Load()
			if err != nil {
				return err
			}
			cs := identity.ContactString(acct.ID(), a.name)
			var devs []signaling.DeviceEntry
			var devErr error
			if !offline {
				devs, devErr = a.accountDevices()
			}
			if a.opt.json {
				ev := map[string]any{"event": "id", "account": acct.ID(), "device": dev.ID(), "device_name": dev.Name, "name": a.name, "contact": cs, "home": a.home}
				if !offline {
					ev["devices"] = deviceJSON(devs, dev.ID())
					if devErr != nil {
						ev["devices_error"] = devErr.Error()
					}
				}
				a.emitJSON(ev)
				return nil
			}
			a.printf("Account  %s\nName     %s\nDevice   %s (%s)\nHome     %s\nContact  %s\n", acct.ID(), a.name, dev.Name, dev.ID(), a.home, cs)
			if offline {
				return nil
			}
			if devErr != nil {
				a.printf("Devices  unknown: %v\n", devErr)
				return nil
			}
			a.printf("Devices\n")
			printDevices(a, devs, dev.ID())
			return nil
		},
	}
	c.Flags().BoolVar(&offline, "offline", false, "do not look up the account's devices in the DHT")
	return c
}

// accountDevices publishes this device and returns the account's list.
func (a *app) accountDevices() ([]signaling.DeviceEntry, error) {
	n, err := a.openNode(nil)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
	defer cancel()
	return n.PublishDevices(ctx)
}

func deviceJSON(devs []signaling.DeviceEntry, self identity.DeviceID) []map[string]any {
	out := []map[string]any{}
	for _, d := range devs {
		out = append(out, map[string]any{"device": d.Device, "name": d.Name, "this": d.Device == self, "not_after": d.NotAfter})
	}
	return out
}

func printDevices(a *app, devs []signaling.DeviceEntry, self identity.DeviceID) {
	for _, d := range devs {
		mark := " "
		if d.Device == self {
			mark = "*"
		}
		a.printf("  %s %-20s %s\n", mark, d.Name, d.Device)
	}
}
