package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
)

func (a *app) transfersCommand() *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "transfers",
		Short: "Show the transfer history, newest first, with each device's state",
		Long: `transfers lists the files this device sent and received, newest first. An
outgoing transfer shows each recipient device's state; a transfer that was running
when peerdrop stopped shows as failed (interrupted) and can be continued with
peerdrop resume ID on the receiving device.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			names := contactNamer(st)
			hist, err := peerdrop.ReadHistory(a.home)
			if err != nil {
				return err
			}
			if limit > 0 && len(hist) > limit {
				hist = hist[:limit]
			}
			for _, r := range hist {
				if a.opt.json {
					a.emitJSON(struct {
						Event string `json:"event"`
						peerdrop.Record
						PeerName string `json:"peer_name"`
					}{"transfer", r, names(r.Peer)})
					continue
				}
				arrow, with := "→", "to"
				if r.Direction == peerdrop.Incoming {
					arrow, with = "←", "from"
				}
				state := r.State.String()
				if r.Error != "" {
					state += ": " + r.Error
				}
				a.printf("%s %s %s %s %s (%s)  %s\n", r.Updated.Local().Format(time.DateTime), arrow, r.Name, with, names(r.Peer), humanBytes(r.Size), state)
				if len(r.Devices) > 0 {
					var parts []string
					for _, d := range r.Devices {
						p := d.Name + " " + d.State.String()
						if d.Error != "" {
							p += " (" + d.Error + ")"
						}
						parts = append(parts, p)
					}
					a.printf("    devices: %s\n", strings.Join(parts, "; "))
				}
				if r.Path != "" && r.Direction == peerdrop.Incoming {
					a.printf("    saved: %s\n", r.Path)
				}
				a.printf("    id: %s\n", r.ID)
			}
			if len(hist) == 0 {
				a.notef("no transfers yet\n")
			}
			return nil
		},
	}
	c.Flags().IntVarP(&limit, "limit", "n", 0, "show at most this many (0: all)")
	return c
}
