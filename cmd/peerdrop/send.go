package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

func (a *app) sendCommand() *cobra.Command {
	var find time.Duration
	var wait bool
	c := &cobra.Command{
		Use:   "send CONTACT PATH...",
		Short: "Offer files and folders to every device of a contact",
		Long: `send offers the files and folders given to every device of CONTACT (a name
from peerdrop contact list, an account ID or a contact string), all in one offer:
each device accepts or refuses it once, then receives every file, verified, in a
new folder of its own ("photos (1)" when it has a photos folder already).
Symbolic links are never followed. The offer counts as sent when at least one
device received and verified every file. The bars show each device and, on top,
the most advanced one (the aggregate); with --json, a "file" event says how each
file ended on each device.

A device that does not answer (offline) waits: it is tried again in the
background for --retry-for (a day) while peerdrop recv runs on this home, across
restarts, and gets the file when it comes online; send returns once every device
has the file, has ended or waits (--wait: until every device has ended).

Exit status: 0 when the offer was received and verified by at least one device;
3 when it was refused by every device, 4 canceled, 5 when no device received it
(see the hint), 6 for an unknown contact, 8 when it is queued: no device has it
yet, and those that did not answer are tried again.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, ct, err := a.contact(args[0])
			if err != nil {
				return err
			}
			files := args[1:]
			for i, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					return withHint(exitError, err, "")
				}
				if !fi.Mode().IsRegular() && !fi.IsDir() {
					return withHint(exitUsage, fmt.Errorf("%s is neither a file nor a folder", f), "")
				}
				if files[i], err = filepath.Abs(f); err != nil {
					return err
				}
			}
			// A running recv holds the home: it sends for us.
			if ok, err := a.viaDaemon(append([]string{"send", "--find-timeout=" + find.String(), "--wait=" + strconv.FormatBool(wait), "--retry-for=" + a.opt.retryFor.String(), args[0]}, files...)); ok {
				return err
			}
			disp := a.newDisplay(contactNamer(st))
			defer disp.close()
			n, err := a.openNode(func(c *peerdrop.Config) { c.OnEvent = disp.event })
			if err != nil {
				return err
			}
			defer a.closeNode(n)
			err = a.sendOne(n, disp, ct, files, find, wait)
			if a.ctx.Err() != nil {
				return errInterrupted
			}
			return err
		},
	}
	c.Flags().DurationVar(&find, "find-timeout", 15*time.Second, "how long to look for the contact's devices in the DHT")
	c.Flags().BoolVar(&wait, "wait", false, "wait until every device has the file or has ended, rather than leave those that do not answer to the running peerdrop recv")
	return c
}

// sendOne sends one file and reports the result.
func (a *app) sendOne(n *peerdrop.Node, disp *display, ct identity.Contact, paths []string, find time.Duration, wait bool) error {
	path := paths[0]
	if len(paths) > 1 {
		path = fmt.Sprintf("%s and %d more", paths[0], len(paths)-1)
	}
	start := time.Now()
	var out *peerdrop.OutgoingTransfer
	id := transfer.NewID()
	if a.router != nil { // in a running recv: its Node's events of id are ours
		defer a.router.own(id, disp.event)()
	}
	fctx, cancel := context.WithTimeout(a.ctx, find)
	for {
		var err error
		out, err = n.SendFilesWithID(fctx, id, ct.ID, paths, peerdrop.WithDeliveryWindow(cmp.Or(a.opt.retryFor, -1)))
		if err == nil {
			break
		}
		// A contact's list can be missing for a moment (not yet stored
		// near us): look again until find runs out.
		if errors.Is(err, signaling.ErrNotFound) && fctx.Err() == nil {
			a.log.Info("device list not found yet; looking again", "contact", ct.Name)
			select {
			case <-fctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		cancel()
		if a.ctx.Err() != nil {
			return errInterrupted
		}
		if st := n.Stats().DHT; st.GoodNodes == 0 && a.opt.proxy == "" && (errors.Is(err, signaling.ErrNotFound) || errors.Is(err, context.DeadlineExceeded)) {
			hint := fmt.Sprintf("is UDP blocked on this network? peerdrop's signaling needs UDP to a DHT node (bootstrap: %s; or --lan, --global), or a signaling proxy over TLS (--proxy)", a.opt.bootstrap)
			if a.opt.bootstrap == "" && !a.opt.lan && !a.opt.global {
				hint = "no DHT node is configured: give --bootstrap HOST:PORT (peerdrop dht-node runs one), --lan or --global, or set one in the config file"
			}
			return withHint(exitFailed, fmt.Errorf("%s: this device reached no DHT node, so it cannot look up %s's devices", path, ct.Name), hint)
		}
		if errors.Is(err, signaling.ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
			where := "in the DHT"
			if a.opt.proxy != "" {
				where = "in the DHT or through the proxy"
			}
			return withHint(exitFailed, fmt.Errorf("%s: no device of %s found %s within %v", path, ct.Name, where, find),
				fmt.Sprintf("has %s run peerdrop (recv) since adding you, with a DHT node you both reach (--bootstrap, --lan)?", ct.Name))
		}
		return err
	}
	cancel()
	end := out.Settled()
	if wait {
		end = out.Done()
	}
	if !a.untilDone(end, out.Cancel) {
		return errInterrupted
	}
	agg := out.Status()
	err := agg.Err
	if agg.State == multidevice.Waiting {
		err = peerdrop.ErrWaiting
	}
	a.report(disp, ct, out, start, err)
	switch {
	case agg.State == multidevice.Waiting:
		return withHint(exitQueued, fmt.Errorf("%s → %s: queued: no device answered yet (%s)", out.Name(), ct.Name, waitingDevices(out)), a.queuedHint(out))
	case err != nil:
		return explain(ct.Name, out.Name(), err)
	}
	return nil
}

// waitingDevices names the devices that wait, and why.
func waitingDevices(out *peerdrop.OutgoingTransfer) string {
	var parts []string
	for _, d := range out.Devices() {
		if d.State == multidevice.Waiting {
			p := d.Name
			if d.Err != nil {
				p += ": " + d.Err.Error()
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// queuedHint says who goes on trying the devices that wait.
func (a *app) queuedHint(out *peerdrop.OutgoingTransfer) string {
	until := out.Until().Format("Jan 2 15:04")
	if a.shared != nil {
		return fmt.Sprintf("the running peerdrop recv tries again until %s and sends it when they come online", until)
	}
	return fmt.Sprintf("they are tried again until %s while peerdrop recv runs on this home: start it (or leave it running) to deliver", until)
}

// report prints the summary of one file (a "result" JSON line with --json).
func (a *app) report(disp *display, ct identity.Contact, out *peerdrop.OutgoingTransfer, start time.Time, err error) {
	agg := out.Status()
	tm := disp.timingOf(out.ID(), peerdrop.Outgoing)
	end := time.Now()
	if !tm.end.IsZero() {
		end = tm.end
	}
	var got, waiting []string
	var link string // of the first device that received it
	devs := []map[string]any{}
	for _, d := range out.Devices() {
		switch d.State {
		case multidevice.Finished:
			got = append(got, d.Name)
		case multidevice.Waiting:
			waiting = append(waiting, d.Name)
		}
		dj := map[string]any{"device": d.Device, "name": d.Name, "state": d.State, "bytes": d.Bytes, "relayed": d.Relayed, "link": d.Link}
		if d.State == multidevice.Waiting {
			dj["retry"], dj["until"] = d.Retry, out.Until()
		}
		if d.Connect > 0 {
			dj["connect_ms"] = float64(d.Connect.Microseconds()) / 1000
		}
		if d.State == multidevice.Finished && link == "" {
			link = d.Link
		}
		if d.Err != nil {
			dj["error"] = d.Err.Error()
		}
		devs = append(devs, dj)
	}
	secs := end.Sub(start).Seconds()
	var rate float64
	if !tm.firstData.IsZero() && end.After(tm.firstData) {
		rate = float64(agg.Total) / end.Sub(tm.firstData).Seconds()
	}
	if a.opt.json {
		res := map[string]any{"event": "result", "transfer": out.ID(), "name": out.Name(), "peer": ct.ID, "peer_name": ct.Name,
			"ok": err == nil, "state": agg.State, "bytes": agg.Bytes, "total": agg.Total, "seconds": secs,
			"rate": rate, "relayed": tm.relayed, "link": link, "devices": devs}
		if !tm.firstData.IsZero() {
			res["first_byte_ms"] = float64(tm.firstData.Sub(start).Microseconds()) / 1000
		}
		if err != nil {
			res["error"] = err.Error()
		}
		a.emitJSON(res)
		return
	}
	if err == nil {
		path := cmp.Or(link, "direct")
		if tm.relayed {
			path = "relayed"
		}
		a.notef("%s → %s: received and verified by %s (%s in %.1fs, %s/s, %s)\n",
			out.Name(), ct.Name, strings.Join(got, ", "), humanBytes(agg.Total), secs, humanBytes(int64(rate)), path)
		if len(waiting) > 0 {
			a.notef("%s → %s: waiting for %s (did not answer); %s\n", out.Name(), ct.Name, strings.Join(waiting, ", "), a.queuedHint(out))
		}
	}
}

// explain words a failed send for a person: who, what was tried, why.
func explain(contact, file string, err error) error {
	var de *multidevice.DevicesError
	if !errors.As(err, &de) {
		return err
	}
	var parts []string
	for _, d := range de.Devices {
		name := d.Name
		if name == "" {
			name = d.Device.Short()
		}
		p := name + ": " + d.State.String()
		if d.Err != nil {
			p += " (" + d.Err.Error() + ")"
		}
		parts = append(parts, p)
	}
	plural := "s"
	if len(de.Devices) == 1 {
		plural = ""
	}
	var msg string
	switch de.State {
	case multidevice.Refused:
		msg = fmt.Sprintf("%s refused %s on every device: %s", contact, file, strings.Join(parts, "; "))
	case multidevice.Canceled:
		msg = fmt.Sprintf("%s canceled %s: %s", contact, file, strings.Join(parts, "; "))
	default:
		msg = fmt.Sprintf("%s has no device that received %s: tried %d device%s (%s)", contact, file, len(de.Devices), plural, strings.Join(parts, "; "))
	}
	code, hint := classify(err, "")
	return withHint(code, errors.New(msg), hint)
}

// contactNamer names accounts by their contact names (or their short ID).
func contactNamer(st *identity.Store) func(identity.AccountID) string {
	names := map[identity.AccountID]string{}
	if cs, err := st.Contacts(); err == nil {
		for _, c := range cs {
			names[c.ID] = c.Name
		}
	}
	return func(id identity.AccountID) string {
		if n, ok := names[id]; ok && n != "" {
			return n
		}
		return id.Short()
	}
}

// untilDone waits for done; on Ctrl-C it calls cancel, still waits for
// done (partial files kept, records saved) and returns false.
func (a *app) untilDone(done <-chan struct{}, cancel func()) bool {
	select {
	case <-done:
		return true
	case <-a.ctx.Done():
		cancel()
		<-done
		return false
	}
}
