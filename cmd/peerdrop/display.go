package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// display shows transfers as they go: progress bars on a terminal (one per
// recipient device and one for the aggregate), a line per state change when
// stderr is not a terminal, or every event as a JSON line with --json. Its
// event method is the Node's OnEvent. It also keeps each transfer's timing
// for the summary (first byte, rate, path).
type display struct {
	a     *app
	names func(identity.AccountID) string

	bars *mpb.Progress // nil unless stderr is a terminal

	mu     sync.Mutex
	rows   map[rowKey]*row
	timing map[timingKey]*timing
}

type rowKey struct {
	id  transfer.ID
	dir peerdrop.Direction
	dev identity.DeviceID // zero: the aggregate (outgoing) or the transfer (incoming)
}

type timingKey struct {
	id  transfer.ID
	dir peerdrop.Direction
}

// row is one bar, or one line of state reports.
type row struct {
	bar   *mpb.Bar
	label string
	state atomic.Value // string shown after the bar
	last  multidevice.State
}

// timing is one transfer's clock, for the summary line.
type timing struct {
	firstData time.Time // the first device started receiving (ongoing)
	end       time.Time
	relayed   bool
}

func (a *app) newDisplay(names func(identity.AccountID) string) *display {
	d := &display{a: a, names: names, rows: make(map[rowKey]*row), timing: make(map[timingKey]*timing)}
	if !a.opt.json && a.stderrIsTerminal() {
		opts := []mpb.ContainerOption{mpb.WithOutput(a.stderr), mpb.WithWidth(100), mpb.WithRefreshRate(150 * time.Millisecond)}
		if a.term != nil { // a client's terminal, through the control socket
			opts = append(opts, mpb.WithAutoRefresh())
			if a.width > 0 {
				opts[1] = mpb.WithWidth(min(a.width, 100))
			}
		}
		d.bars = mpb.New(opts...)
		a.outMu.Lock()
		a.above = d.bars
		a.outMu.Unlock()
	}
	return d
}

// stderrIsTerminal says whether progress bars are drawn: on a terminal,
// here or a client's (control.go).
func (a *app) stderrIsTerminal() bool {
	if a.term != nil {
		return *a.term
	}
	return isTerminal(a.stderr)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// jsonEvent is an Event with the peer's contact name.
type jsonEvent struct {
	peerdrop.Event
	PeerName string `json:"peer_name,omitempty"`
}

// event is the Node's OnEvent: it must return quickly.
func (d *display) event(e peerdrop.Event) {
	d.track(e)
	if d.a.opt.json {
		d.a.emitJSON(jsonEvent{Event: e, PeerName: d.names(e.Peer)})
		return
	}
	if e.Kind == peerdrop.EventOffer {
		return
	}
	d.mu.Lock()
	r := d.row(e)
	d.mu.Unlock()
	if e.Kind == peerdrop.EventFile { // one file of many: named on its device's bar
		switch {
		case r.bar != nil && e.Err == nil:
			r.state.Store(termSafe(e.File))
		case e.Err != nil:
			d.a.notef("%s: %s: %s\n", r.label, termSafe(e.File), termSafe(e.Err.Error()))
		}
		return
	}
	if r.bar != nil {
		d.updateBar(r, e)
		return
	}
	if e.Kind == peerdrop.EventState && e.State != r.last {
		r.last = e.State
		d.a.notef("%s: %s\n", r.label, describe(e))
	}
}

// track keeps the clock of a transfer (for the summary).
func (d *display) track(e peerdrop.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := timingKey{e.Transfer, e.Direction}
	t := d.timing[k]
	if t == nil {
		t = &timing{}
		d.timing[k] = t
	}
	if e.Relayed {
		t.relayed = true
	}
	if e.State == multidevice.Ongoing && t.firstData.IsZero() {
		t.firstData = e.Time
	}
	if e.State.Terminal() && (e.Device.IsZero() || e.Direction == peerdrop.Incoming) {
		t.end = e.Time
	}
}

// timingOf returns a copy of a transfer's clock.
func (d *display) timingOf(id transfer.ID, dir peerdrop.Direction) timing {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.timing[timingKey{id, dir}]; t != nil {
		return *t
	}
	return timing{}
}

// row returns (creating) the row of an event; d.mu is held.
func (d *display) row(e peerdrop.Event) *row {
	k := rowKey{e.Transfer, e.Direction, e.Device}
	if e.Direction == peerdrop.Incoming {
		k.dev = identity.DeviceID{}
	}
	if r := d.rows[k]; r != nil {
		return r
	}
	if e.Direction == peerdrop.Outgoing && !e.Device.IsZero() {
		// The aggregate's row comes first: bars are drawn in order.
		agg := e
		agg.Device, agg.State, agg.Bytes, agg.Err = identity.DeviceID{}, multidevice.Connecting, 0, nil
		d.row(agg)
	}
	r := &row{}
	peer := d.names(e.Peer)
	switch {
	case e.Direction == peerdrop.Incoming:
		r.label = fmt.Sprintf("%s ← %s", termSafe(e.Name), termSafe(peer))
	case e.Device.IsZero():
		r.label = fmt.Sprintf("%s → %s", termSafe(e.Name), termSafe(peer))
	default:
		name := e.DeviceName
		if name == "" {
			name = e.Device.Short()
		}
		r.label = fmt.Sprintf("  %s/%s", termSafe(peer), termSafe(name))
	}
	r.state.Store(e.State.String())
	if d.bars != nil {
		total := max(e.Total, 1)
		opts := []mpb.BarOption{
			mpb.PrependDecorators(decor.Name(r.label, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 28})),
			mpb.AppendDecorators(
				decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 22}),
				decor.Percentage(decor.WC{W: 6}),
				decor.Any(func(decor.Statistics) string { return "  " + r.state.Load().(string) }),
			),
		}
		r.bar = d.bars.AddBar(total, opts...)
	}
	d.rows[k] = r
	return r
}

func (d *display) updateBar(r *row, e peerdrop.Event) {
	text := e.State.String()
	switch {
	case e.State == multidevice.Ongoing && e.Rate > 0:
		text = fmt.Sprintf("%s/s", humanBytes(int64(e.Rate)))
	case e.State.Terminal() && e.Err != nil:
		text = fmt.Sprintf("%s: %s", e.State, termSafe(e.Err.Error()))
	case e.State == multidevice.Waiting && !e.Retry.IsZero():
		text = "waiting (offline?), next try " + e.Retry.Format(time.TimeOnly)
	}
	if e.Relayed {
		text += " (relayed)"
	}
	r.state.Store(text)
	if e.Total > 0 {
		r.bar.SetCurrent(e.Bytes)
	}
	if e.State.Terminal() {
		if e.State == multidevice.Finished {
			r.bar.SetTotal(max(e.Total, 1), true)
		} else {
			r.bar.Abort(false)
		}
	}
}

// describe is the plain-text report of a state change.
func describe(e peerdrop.Event) string {
	s := e.State.String()
	switch {
	case e.State == multidevice.Ongoing:
		if e.Relayed {
			s += " (relayed)"
		}
		if e.Bytes > 0 {
			s += fmt.Sprintf(", resuming at %s", humanBytes(e.Bytes))
		}
	case e.State == multidevice.Finished:
		s += ", " + humanBytes(e.Total)
		if e.Path != "" {
			s += ", saved as " + e.Path
		}
	case e.State == multidevice.Waiting:
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		if !e.Retry.IsZero() {
			s += fmt.Sprintf("; next try %s, until %s", e.Retry.Format(time.TimeOnly), e.Until.Format("Jan 2 15:04"))
		}
	case e.Err != nil:
		s += ": " + e.Err.Error()
	}
	return s
}

// close stops drawing: bars of transfers still running are left as they are.
func (d *display) close() {
	d.mu.Lock()
	bars := d.bars
	d.bars = nil
	for _, r := range d.rows {
		if r.bar != nil && !r.bar.Completed() && !r.bar.Aborted() {
			r.bar.Abort(false)
		}
	}
	d.mu.Unlock()
	if bars == nil {
		return
	}
	bars.Wait()
	d.a.outMu.Lock()
	d.a.above = nil
	d.a.outMu.Unlock()
}

// humanBytes formats a size with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
