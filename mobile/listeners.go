package mobile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
)

// OfferListener is told about offers that wait for Accept or Refuse.
type OfferListener interface {
	OnOffer(offer *Offer)
}

// ProgressListener follows transfers: OnTransfer gets a transfer as a whole
// (an incoming one, or the optimistic aggregate of an outgoing one, whose
// DeviceID is empty), OnDevice one recipient device of an outgoing one.
type ProgressListener interface {
	OnTransfer(progress *Progress)
	OnDevice(progress *Progress)
}

// StateListener gets every state change (of transfers, and of each
// recipient device) as a JSON object: the fields of peerdrop.Event plus
// peer_name.
type StateListener interface {
	OnState(eventJSON []byte)
}

// LogListener gets the Node's logs: level -4 debug, 0 info, 4 warn, 8 error.
type LogListener interface {
	OnLog(level int, message string)
}

// Offer is a file a contact offers.
type Offer struct {
	ID        string // the transfer ID, for Accept, Refuse and CancelIncoming
	From      string // the sender's account ID
	FromName  string // the sender's name in the contacts
	Device    string // the sending device's ID
	Name      string // the sanitized file name; of many files, "photos/ and 2 more"
	Size      int64  // of many files, their total
	MediaType string
	// Files is the number of files of many in one offer (0: one file),
	// Tops their top-level names, one per line (folders end in '/').
	Files int
	Tops  string
}

// Progress is where a transfer, or one device of it, is.
type Progress struct {
	TransferID string
	Direction  string // "outgoing" or "incoming"
	Peer       string // the contact's account ID
	PeerName   string
	DeviceID   string // empty: the whole transfer
	DeviceName string
	Name       string // the file name
	// State is connecting, awaiting-peer (the other side decides),
	// awaiting-decision (an incoming offer: this device decides),
	// ongoing, finished, refused, canceled, failed, or waiting: a device
	// that did not answer, tried again at RetryAtMillis until UntilMillis
	// (Config.DeliveryWindowSeconds).
	State   string
	Bytes   int64
	Total   int64
	Rate    float64 // bytes per second
	Relayed bool
	Path    string // the saved file of a finished incoming transfer
	Error   string
	// RetryAtMillis and UntilMillis (Unix milliseconds) are set while a
	// device is waiting.
	RetryAtMillis int64
	UntilMillis   int64
}

// Terminal reports whether the state is final.
func (p *Progress) Terminal() bool {
	switch p.State {
	case "finished", "refused", "canceled", "failed":
		return true
	}
	return false
}

// dispatcher calls the app's listeners from one goroutine: queued calls
// (offers, states, logs) in order, and the latest progress per transfer
// and device, coalesced while the app is busy.
type dispatcher struct {
	mu       sync.Mutex
	offer    OfferListener
	progress ProgressListener
	state    StateListener
	logs     LogListener

	queue    []func()
	latest   map[progressKey]*Progress
	order    []progressKey
	wake     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	finished chan struct{}
}

type progressKey struct{ transfer, direction, device string }

// maxQueue bounds the queued calls; past it the oldest log lines go.
const maxQueue = 4096

func newDispatcher() *dispatcher {
	d := &dispatcher{latest: make(map[progressKey]*Progress), wake: make(chan struct{}, 1), finished: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.loop()
	return d
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// post queues a call.
func (d *dispatcher) post(f func()) {
	d.mu.Lock()
	if len(d.queue) >= maxQueue {
		d.queue = d.queue[1:]
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	d.signal()
}

// postProgress replaces the pending progress of the same key.
func (d *dispatcher) postProgress(p *Progress) {
	k := progressKey{p.TransferID, p.Direction, p.DeviceID}
	d.mu.Lock()
	if _, ok := d.latest[k]; !ok {
		d.order = append(d.order, k)
	}
	d.latest[k] = p
	d.mu.Unlock()
	d.signal()
}

// flushProgress queues the pending progress of a key now (before a state
// change of it, so the app never sees progress after the end).
func (d *dispatcher) flushProgress(k progressKey) {
	d.mu.Lock()
	p, ok := d.latest[k]
	if ok {
		delete(d.latest, k)
		for i, o := range d.order {
			if o == k {
				d.order = append(d.order[:i], d.order[i+1:]...)
				break
			}
		}
	}
	d.mu.Unlock()
	if ok {
		d.post(func() { d.callProgress(p) })
	}
}

func (d *dispatcher) loop() {
	defer close(d.finished)
	for {
		d.mu.Lock()
		var f func()
		var p *Progress
		switch {
		case len(d.queue) > 0:
			f = d.queue[0]
			d.queue = d.queue[1:]
		case len(d.order) > 0:
			k := d.order[0]
			d.order = d.order[1:]
			p = d.latest[k]
			delete(d.latest, k)
		}
		d.mu.Unlock()
		switch {
		case f != nil:
			f()
			continue
		case p != nil:
			d.callProgress(p)
			continue
		}
		select {
		case <-d.wake:
		case <-d.ctx.Done():
			return
		}
	}
}

// close delivers what is queued and stops.
func (d *dispatcher) close() {
	done := make(chan struct{})
	d.post(func() { close(done) })
	select {
	case <-done:
	case <-d.finished:
	}
	d.cancel()
	<-d.finished
}

func (d *dispatcher) listeners() (OfferListener, ProgressListener, StateListener, LogListener) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offer, d.progress, d.state, d.logs
}

func (d *dispatcher) callProgress(p *Progress) {
	_, pl, _, _ := d.listeners()
	if pl == nil {
		return
	}
	if p.DeviceID == "" {
		pl.OnTransfer(p)
	} else {
		pl.OnDevice(p)
	}
}

// event is the Node's OnEvent: it only queues.
func (d *dispatcher) event(e peerdrop.Event, names func(identity.AccountID) string) {
	p := progressOf(e, names(e.Peer))
	k := progressKey{p.TransferID, p.Direction, p.DeviceID}
	switch e.Kind {
	case peerdrop.EventProgress:
		d.postProgress(p)
	case peerdrop.EventState:
		d.flushProgress(k)
		d.post(func() { d.callProgress(p) })
		b, err := json.Marshal(struct {
			peerdrop.Event
			PeerName string `json:"peer_name,omitempty"`
		}{e, p.PeerName})
		if err == nil {
			d.post(func() {
				if _, _, sl, _ := d.listeners(); sl != nil {
					sl.OnState(b)
				}
			})
		}
	}
}

func progressOf(e peerdrop.Event, peerName string) *Progress {
	p := &Progress{TransferID: e.Transfer.String(), Direction: string(e.Direction), Peer: e.Peer.String(), PeerName: peerName,
		DeviceName: e.DeviceName, Name: e.Name, State: e.State.String(), Bytes: e.Bytes, Total: e.Total, Rate: e.Rate,
		Relayed: e.Relayed, Path: e.Path, Error: e.Error}
	if e.Err != nil {
		p.Error = e.Err.Error()
	}
	if e.Direction == peerdrop.Outgoing && !e.Device.IsZero() {
		p.DeviceID = e.Device.String()
	}
	if !e.Retry.IsZero() {
		p.RetryAtMillis = e.Retry.UnixMilli()
	}
	if !e.Until.IsZero() {
		p.UntilMillis = e.Until.UnixMilli()
	}
	return p
}

// logHandler is a slog.Handler that queues records for the LogListener.
type logHandler struct {
	d     *dispatcher
	level slog.Level
	attrs []slog.Attr
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	msg, level := b.String(), int(r.Level)
	h.d.post(func() {
		if _, _, _, ll := h.d.listeners(); ll != nil {
			ll.OnLog(level, msg)
		}
	})
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{d: h.d, level: h.level, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }
