package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/multidevice"
)

func (a *app) resumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume ID",
		Short: "Ask the sender of an interrupted incoming transfer for the rest of the file",
		Long: `resume asks the device that sent a failed, canceled or interrupted transfer
(peerdrop transfers shows their IDs; a unique prefix will do) to send it again,
and continues from the partial file; the whole file's digest is verified. The
sender's peerdrop must be running (recv) and the file unchanged.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			hist, err := peerdrop.ReadHistory(a.home)
			if err != nil {
				return err
			}
			var match []peerdrop.Record
			for _, r := range hist {
				if r.Direction == peerdrop.Incoming && strings.HasPrefix(r.ID.String(), args[0]) {
					match = append(match, r)
				}
			}
			switch {
			case len(match) == 0:
				return fmt.Errorf("no incoming transfer %q: %w", args[0], peerdrop.ErrUnknownTransfer)
			case len(match) > 1:
				return usageErr("%d transfers start with %q; give more of the ID", len(match), args[0])
			case match[0].State == multidevice.Finished:
				return withHint(exitUsage, fmt.Errorf("%s was received completely: %s", match[0].Name, match[0].Path), "")
			}
			// A running recv holds the home: it resumes for us.
			if ok, err := a.viaDaemon([]string{"resume", match[0].ID.String()}); ok {
				return err
			}
			disp := a.newDisplay(contactNamer(st))
			defer disp.close()
			n, err := a.openNode(func(c *peerdrop.Config) { c.OnEvent = disp.event })
			if err != nil {
				return err
			}
			defer a.closeNode(n)
			if a.router != nil { // in a running recv: its Node's events of the transfer are ours
				defer a.router.own(match[0].ID, disp.event)()
			}
			ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
			in, err := n.Reask(ctx, match[0].ID)
			cancel()
			if err != nil {
				if a.ctx.Err() != nil {
					return errInterrupted
				}
				return err
			}
			if !a.untilDone(in.Done(), func() { in.Cancel("interrupted") }) {
				return errInterrupted
			}
			path, err := in.Wait(context.Background())
			if err != nil {
				return withHint(exitFailed, err, "")
			}
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "result", "transfer": match[0].ID, "name": match[0].Name, "ok": true, "path": path})
				return nil
			}
			a.notef("%s: complete and verified: %s\n", match[0].Name, path)
			return nil
		},
	}
}
