package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/transfer"
)

// Offers a running recv holds undecided can be answered from any
// terminal: "peerdrop accept ID" and "peerdrop refuse ID" run in the recv
// (control.go), as well as on recv's own terminal.

// offerBook is the undecided offers of a running recv.
type offerBook struct {
	mu sync.Mutex
	m  map[transfer.ID]*pendingOffer
}

// pendingOffer is one undecided offer; decided closes when it is answered
// (here, from another terminal, or withdrawn).
type pendingOffer struct {
	in      *peerdrop.IncomingTransfer
	from    string // the contact's name
	decided chan struct{}
	once    sync.Once
	by      string // who answered: "this terminal", "another terminal"
}

func (b *offerBook) add(in *peerdrop.IncomingTransfer, from string) *pendingOffer {
	p := &pendingOffer{in: in, from: from, decided: make(chan struct{})}
	b.mu.Lock()
	if b.m == nil {
		b.m = make(map[transfer.ID]*pendingOffer)
	}
	b.m[in.Offer().Transfer] = p
	b.mu.Unlock()
	go func() { // gone from the book once answered or withdrawn
		select {
		case <-p.decided:
		case <-in.Done():
		}
		b.mu.Lock()
		delete(b.m, in.Offer().Transfer)
		b.mu.Unlock()
	}()
	return p
}

// find returns the undecided offers whose ID starts with prefix.
func (b *offerBook) find(prefix string) []*pendingOffer {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*pendingOffer
	for id, p := range b.m {
		if strings.HasPrefix(id.String(), prefix) {
			out = append(out, p)
		}
	}
	return out
}

// answer runs f as the offer's one answer; it reports false if the offer
// was answered already.
func (p *pendingOffer) answer(by string, f func() error) (bool, error) {
	first := false
	var err error
	p.once.Do(func() {
		first = true
		p.by = by
		err = f()
		close(p.decided)
	})
	return first, err
}

func (a *app) acceptCommand() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "accept ID",
		Short: "Accept an offer that a running recv is asking about (from any terminal)",
		Long: `accept answers yes to an offer waiting in this home's running recv (its ID is in
recv's question, its JSON offer event, or peerdrop transfers; a unique prefix will
do). The file is received into --dir, or recv's directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !a.remote {
				fwd := []string{"accept", args[0]}
				if dir != "" {
					abs, err := filepath.Abs(dir)
					if err != nil {
						return err
					}
					fwd = append(fwd, "--dir", abs)
				}
				return a.answerViaRecv(fwd)
			}
			p, err := a.pendingOffer(args[0])
			if err != nil {
				return err
			}
			ok, err := p.answer("another terminal", func() error { return p.in.Accept(transfer.Destination{Dir: dir}) })
			return a.answered(p, ok, err, "accepted")
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory for the file (default: recv's)")
	return c
}

func (a *app) refuseCommand() *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "refuse ID",
		Short: "Refuse an offer that a running recv is asking about (from any terminal)",
		Long: `refuse answers no to an offer waiting in this home's running recv; the sender's
device sees --reason.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !a.remote {
				return a.answerViaRecv([]string{"refuse", args[0], "--reason", reason})
			}
			p, err := a.pendingOffer(args[0])
			if err != nil {
				return err
			}
			ok, err := p.answer("another terminal", func() error { return p.in.Refuse(reason) })
			return a.answered(p, ok, err, "refused")
		},
	}
	c.Flags().StringVar(&reason, "reason", "declined", "the reason the sender sees")
	return c
}

// answerViaRecv runs an accept or refuse in the running recv.
func (a *app) answerViaRecv(args []string) error {
	ok, err := a.viaDaemon(args)
	if !ok {
		return withHint(exitUnknown, errors.New("no peerdrop recv is running on this home: there is no offer to answer"),
			"offers wait in a running recv; start one with peerdrop recv")
	}
	return err
}

// pendingOffer finds the running recv's undecided offer by ID prefix.
func (a *app) pendingOffer(prefix string) (*pendingOffer, error) {
	var ps []*pendingOffer
	if a.offers != nil {
		ps = a.offers.find(prefix)
	}
	switch {
	case len(ps) == 0:
		return nil, withHint(exitUnknown, fmt.Errorf("no undecided offer %q", prefix), "peerdrop transfers lists offers; an offer answered or withdrawn is gone")
	case len(ps) > 1:
		return nil, usageErr("%d offers start with %q; give more of the ID", len(ps), prefix)
	}
	return ps[0], nil
}

// answered reports an answer.
func (a *app) answered(p *pendingOffer, first bool, err error, what string) error {
	o := p.in.Offer()
	if !first {
		return withHint(exitUsage, fmt.Errorf("%s was already answered (from %s)", o.Name, p.by), "")
	}
	if err != nil {
		return err
	}
	if a.opt.json {
		a.emitJSON(map[string]any{"event": what, "transfer": o.Transfer, "name": o.Name, "from": p.from})
		return nil
	}
	a.printf("%s %s from %s\n", strings.ToUpper(what[:1])+what[1:], o.Name, p.from)
	return nil
}
