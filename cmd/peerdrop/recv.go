package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

func (a *app) recvCommand() *cobra.Command {
	var dir string
	var yes, once bool
	c := &cobra.Command{
		Use:   "recv",
		Short: "Wait for files from your contacts (asks before each one unless --yes)",
		Long: `recv runs this device until interrupted: it publishes the device so contacts
find it, and receives the files they offer into --dir. Each offer is asked about
on the terminal (y/N) unless --yes accepts every file from a contact. Offers from
anyone who is not a contact never reach you. With --once it exits after the
first transfer ended: status 0 if the file was saved and verified, 3 if refused,
4 canceled, 5 failed.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return a.recv(dir, yes, once) },
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for received files (default: the current directory)")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "accept every file from a contact without asking")
	c.Flags().BoolVar(&once, "once", false, "exit after the first transfer ended")
	return c
}

// recv runs the recv command: this device receives into dir until
// interrupted (or, once, until the first transfer ended).
func (a *app) recv(dir string, yes, once bool) error {
	st, err := a.store()
	if err != nil {
		return err
	}
	abs, err := recvDir(dir)
	if err != nil {
		return err
	}
	names := contactNamer(st)
	disp := a.newDisplay(names)
	defer disp.close()
	ended := make(chan peerdrop.Event, 64)
	// Transfers that send and resume run here for other terminals
	// (control.go) have their events routed to them.
	router := &eventRouter{fallback: func(e peerdrop.Event) {
		disp.event(e)
		if e.Direction == peerdrop.Incoming && e.Kind == peerdrop.EventState && e.State.Terminal() {
			select {
			case ended <- e:
			default:
			}
		}
	}}
	n, err := a.openNode(func(c *peerdrop.Config) {
		c.ShortLived = false // it stays: a full DHT node unless behind a NAT
		c.DownloadDir = abs
		if yes {
			c.AutoAccept = func(peerdrop.Offer) bool { return true }
		}
		c.OnEvent = router.route
	})
	if err != nil {
		return err
	}
	defer n.Close()
	ctl, err := a.serveControl(n, router)
	if err != nil {
		return withHint(exitError, err, "send and resume will not run while this recv holds the home")
	}
	defer ctl.Close()

	a.announce(n, abs)

	// This terminal asks about the offers one at a time.
	asks := a.queueOffers(n, names)
	var answers <-chan string // stdin lines, read once the first offer is asked about
	for {
		select {
		case <-a.ctx.Done():
			return errInterrupted
		case p := <-asks:
			if answers == nil {
				answers = a.lines()
			}
			a.decide(p, abs, answers)
		case e := <-ended:
			if once {
				return onceResult(e)
			}
		}
	}
}

// recvDir is --dir made absolute, or a usage error if it is not a
// directory.
func recvDir(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", withHint(exitUsage, fmt.Errorf("--dir %s is not a directory", dir), "create it first")
	}
	return abs, nil
}

// announce publishes this device in its account's list (retried in the
// background if the DHT is not reached yet) and says the device is ready.
func (a *app) announce(n *peerdrop.Node, abs string) {
	pctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
	devs, err := n.PublishDevices(pctx)
	cancel()
	if err != nil && a.ctx.Err() == nil {
		a.log.Warn("device list not published yet; retrying in the background", "err", err)
	}
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "ready", "account": n.Account(), "device": n.Device(), "device_name": n.DeviceName(),
			"dir": abs, "dht": n.DHTAddr().String(), "devices": len(devs)})
	} else {
		a.notef("Receiving into %s as %s (%s). Ctrl-C to stop.\n", abs, n.DeviceName(), n.Device().Short())
	}
}

// queueOffers puts n's offers in a.offers, where accept and refuse from
// other terminals find them, and returns them in order for this terminal
// to ask about.
func (a *app) queueOffers(n *peerdrop.Node, names func(identity.AccountID) string) <-chan *pendingOffer {
	a.offers = &offerBook{}
	asks := make(chan *pendingOffer, 64)
	go func() {
		for {
			select {
			case in := <-n.Offers():
				p := a.offers.add(in, names(in.Offer().From))
				select {
				case asks <- p:
				case <-a.ctx.Done():
					return
				}
			case <-a.ctx.Done():
				return
			}
		}
	}()
	return asks
}

// onceResult is recv --once's result for the transfer that ended.
func onceResult(e peerdrop.Event) error {
	switch e.State {
	case multidevice.Finished:
		return nil
	case multidevice.Refused:
		return withHint(exitRefused, fmt.Errorf("%s: refused", e.Name), "")
	case multidevice.Canceled:
		return withHint(exitCanceled, fmt.Errorf("%s: canceled: %s", e.Name, e.Error), "peerdrop resume "+e.Transfer.String()+" asks for the rest")
	}
	return withHint(exitFailed, fmt.Errorf("%s: failed: %s", e.Name, e.Error), "peerdrop resume "+e.Transfer.String()+" asks for the rest")
}

// lines reads stdin line by line (for the accept prompts); the channel is
// closed at end of input.
func (a *app) lines() <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		for {
			line, err := a.in.ReadString('\n')
			if line != "" || err == nil {
				ch <- strings.TrimSpace(line)
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// decide asks the user about one offer, on this terminal; "peerdrop
// accept/refuse ID" from another may answer first. With no terminal to
// ask (end of input), the offer waits for those until the sender gives up.
func (a *app) decide(p *pendingOffer, dir string, answers <-chan string) {
	in := p.in
	o := in.Offer()
	if a.opt.json {
		// The offer event is already out; the answer is the next stdin line.
		a.emitJSON(map[string]any{"event": "question", "transfer": o.Transfer, "question": "accept? (y/n)"})
	} else {
		what := o.MediaType
		if o.Files > 0 {
			what = fmt.Sprintf("%d files", o.Files)
			if o.Files == 1 {
				what = "1 file"
			}
		}
		fmt.Fprintf(a.stderr, "%s offers %s (%s, %s). Accept? [y/N] (or: peerdrop accept %s) ",
			termSafeArgs([]any{p.from, o.Name, what, humanBytes(o.Size), o.Transfer.String()[:8]})...)
	}
	for {
		var answer string
		var ok bool
		select {
		case answer, ok = <-answers:
		case <-p.decided:
			a.notef("\n%s: answered from %s\n", o.Name, p.by)
			return
		case <-in.Done():
			a.notef("\n%s: the offer was withdrawn\n", o.Name)
			return
		case <-a.ctx.Done():
			return
		}
		if !ok {
			if answers != nil {
				a.notef("\nno terminal to answer on: waiting for peerdrop accept or refuse %s\n", o.Transfer.String()[:8])
			}
			answers = nil // end of input: wait for another terminal
			continue
		}
		yes := strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")
		first, err := p.answer("this terminal", func() error {
			if yes {
				return in.Accept(transfer.Destination{Dir: dir})
			}
			return in.Refuse("declined")
		})
		if !first {
			a.notef("%s: already answered from %s\n", o.Name, p.by)
		} else if err != nil {
			a.notef("%s: %v\n", o.Name, err)
		}
		return
	}
}
