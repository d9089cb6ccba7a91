package peerdrop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// OutgoingTransfer is one file sent to every device of a contact.
type OutgoingTransfer struct {
	n     *Node
	id    transfer.ID
	peer  identity.AccountID
	name  string
	path  string
	size  int64
	mod   time.Time // the source's modification time when offered
	until time.Time // waiting devices are tried again until then (zero: never)
	// bundle is set for many files in one offer (bundle.go): path is its
	// manifest, size the files' total.
	bundle *outBundle

	mu      sync.Mutex
	subs    []*subTransfer
	agg     multidevice.Aggregate
	done    chan struct{}
	settled chan struct{}
	left    int // sub-transfers not ended (in this process)
}

// subTransfer is the transfer to one device. One attempt runs at a time
// (busy): the retry loop's, or a re-ask's.
type subTransfer struct {
	o      *OutgoingTransfer
	dev    identity.DeviceID
	ctx    context.Context
	cancel context.CancelCauseFunc
	sender atomic.Pointer[transfer.Sender]
	wake   chan struct{} // try a waiting device now
	busy   sync.Mutex

	// Guarded by o.mu.
	peer    signaling.Peer // zero Sealing until looked up
	st      multidevice.Device
	ended   bool // finished, or suspended by the node's stop
	looping bool // a retry loop runs for it
}

// SendFile offers the file at path to every device of the contact, in
// parallel, and returns at once with a handle; ctx bounds only finding
// the contact's devices. The transfers run until they end or are
// canceled (Cancel, CancelDevice, Close). A device that cannot be reached
// waits and is tried again for Config.DeliveryWindow (or the
// WithDeliveryWindow option's).
func (n *Node) SendFile(ctx context.Context, contact identity.AccountID, path string, opts ...SendOption) (*OutgoingTransfer, error) {
	return n.SendFileWithID(ctx, transfer.NewID(), contact, path, opts...)
}

// SendOption changes one send.
type SendOption func(*sendOptions)

type sendOptions struct {
	window time.Duration
}

// WithDeliveryWindow sets how long devices that cannot be reached are
// tried again for this send, instead of Config.DeliveryWindow (negative:
// not at all).
func WithDeliveryWindow(d time.Duration) SendOption {
	return func(o *sendOptions) { o.window = d }
}

// SendFileWithID is SendFile with a transfer ID chosen by the caller, for
// an application that must know the ID before the contact's devices are
// found (an asynchronous UI calls it in the background and files the
// events under id at once). id must be fresh: from transfer.NewID, and not
// in the history.
func (n *Node) SendFileWithID(ctx context.Context, id transfer.ID, contact identity.AccountID, path string, opts ...SendOption) (*OutgoingTransfer, error) {
	return n.send(ctx, id, contact, path, opts, nil)
}

// send offers the file at path, or the bundle b (whose manifest is at
// path), to every device of the contact.
func (n *Node) send(ctx context.Context, id transfer.ID, contact identity.AccountID, path string, opts []SendOption, b *outBundle) (*OutgoingTransfer, error) {
	so := sendOptions{window: n.cfg.DeliveryWindow}
	for _, o := range opts {
		o(&so)
	}
	if id.IsZero() {
		return nil, errors.New("peerdrop: zero transfer ID")
	}
	if _, dup := n.records.get(id, Outgoing); dup {
		return nil, fmt.Errorf("peerdrop: transfer %s is already in the history", id)
	}
	if n.closed.Load() {
		return nil, ErrClosed
	}
	c, ok := n.contact(contact)
	if !ok { // added by another process since the last reload?
		n.reloadContacts()
		if c, ok = n.contact(contact); !ok {
			return nil, fmt.Errorf("peerdrop: %s: %w", contact.Short(), identity.ErrNoContact)
		}
		n.refreshContacts()
	}
	abs, fi, err := n.statSource(path)
	if err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("peerdrop: joining the DHT: %w", err)
	}
	list, err := n.dir.Lookup(ctx, contact)
	if err != nil {
		return nil, fmt.Errorf("peerdrop: cannot find the devices of %s: %w", c.Name, err)
	}
	if len(list.Devices) == 0 {
		return nil, fmt.Errorf("peerdrop: %s: %w", c.Name, multidevice.ErrNoDevices)
	}
	o := n.newOutgoing(id, contact, transfer.SanitizeName(fi.Name()), abs, fi.Size(), fi.ModTime())
	media, files := "", 0
	if b != nil {
		o.bundle, o.name, o.size, media, files = b, displayName(b.sum), b.sum.Bytes, ManifestType, b.sum.Files
	}
	if so.window > 0 {
		o.until = time.Now().Add(so.window)
	}
	for _, e := range list.Devices {
		o.addSub(multidevice.Device{Device: e.Device, Name: e.Name, State: multidevice.Connecting}, e.Peer(contact))
	}
	err = n.records.update(o.id, Outgoing, func(r *Record) {
		r.Peer, r.Name, r.Size, r.Path, r.ModTime, r.Until = contact, o.name, o.size, abs, o.mod, o.until
		r.MediaType, r.Files = media, files
		r.State = multidevice.Connecting
		r.Devices = o.deviceRecords()
	})
	if err != nil {
		return nil, err
	}
	n.register(o)
	n.emit(o.aggEvent(true))
	o.start()
	return o, nil
}

func (n *Node) newOutgoing(id transfer.ID, peer identity.AccountID, name, path string, size int64, mod time.Time) *OutgoingTransfer {
	return &OutgoingTransfer{n: n, id: id, peer: peer, name: name, path: path, size: size, mod: mod,
		done: make(chan struct{}), settled: make(chan struct{})}
}

// addSub adds the transfer to one device (whose signaling identity is
// looked up later when peer is zero).
func (o *OutgoingTransfer) addSub(d multidevice.Device, peer signaling.Peer) *subTransfer {
	d.Total = o.size
	s := &subTransfer{o: o, dev: d.Device, peer: peer, wake: make(chan struct{}, 1), st: d}
	s.ctx, s.cancel = context.WithCancelCause(o.n.ctx)
	if d.State.Terminal() {
		s.ended = true
		s.cancel(nil)
	} else {
		o.left++
	}
	o.subs = append(o.subs, s)
	o.agg = multidevice.Of(o.devices())
	return s
}

// start runs a retry loop for every sub-transfer that has not ended (at
// least one has).
func (o *OutgoingTransfer) start() {
	var run []*subTransfer
	o.mu.Lock()
	for _, s := range o.subs {
		if !s.ended {
			s.looping = true
			run = append(run, s)
		}
	}
	o.mu.Unlock()
	for _, s := range run {
		if !o.n.spawn(s.run) {
			s.finish(multidevice.Canceled, 0, ErrClosed)
		}
	}
}

// ID is the transfer ID every device sees.
func (o *OutgoingTransfer) ID() transfer.ID { return o.id }

// Name is the file name offered.
func (o *OutgoingTransfer) Name() string { return o.name }

// Status is the optimistic aggregate over all devices.
func (o *OutgoingTransfer) Status() multidevice.Aggregate {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.agg
}

// Devices returns each device's own state.
func (o *OutgoingTransfer) Devices() []multidevice.Device {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.devices()
}

func (o *OutgoingTransfer) devices() []multidevice.Device {
	out := make([]multidevice.Device, len(o.subs))
	for i, s := range o.subs {
		out[i] = s.st
	}
	return out
}

// Until is when devices that are waiting stop being tried again (zero
// with Config.DeliveryWindow negative).
func (o *OutgoingTransfer) Until() time.Time { return o.until }

// Done is closed when every device's part has ended, or when the Node
// closed (devices still waiting are then tried again by the next Node
// that runs on the home).
func (o *OutgoingTransfer) Done() <-chan struct{} { return o.done }

// Settled is closed the first time no device is being connected to or
// sent to: each has ended or is waiting to be tried again. A command-line
// send returns then, leaving waiting devices to the running node.
func (o *OutgoingTransfer) Settled() <-chan struct{} { return o.settled }

// Wait waits until Done and returns nil if at least one device received
// and verified the file, ErrWaiting if devices were still waiting when the
// Node closed, else the aggregate's error (a *multidevice.DevicesError
// naming each device's reason).
func (o *OutgoingTransfer) Wait(ctx context.Context) error {
	select {
	case <-o.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a := o.Status()
	switch a.State {
	case multidevice.Finished:
		return nil
	case multidevice.Waiting:
		return ErrWaiting
	}
	return a.Err
}

// Cancel cancels the transfer on every device still running or waiting.
func (o *OutgoingTransfer) Cancel() {
	o.mu.Lock()
	subs := append([]*subTransfer(nil), o.subs...)
	o.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}

// CancelDevice cancels the transfer to one device; the others go on.
func (o *OutgoingTransfer) CancelDevice(dev identity.DeviceID) error {
	if s := o.sub(dev); s != nil {
		s.stop()
		return nil
	}
	return fmt.Errorf("peerdrop: device %s is not a recipient of this transfer", dev.Short())
}

func (o *OutgoingTransfer) sub(dev identity.DeviceID) *subTransfer {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.subs {
		if s.dev == dev {
			return s
		}
	}
	return nil
}

func (s *subTransfer) stop() {
	s.o.mu.Lock()
	cancel := s.cancel
	s.o.mu.Unlock()
	cancel(ErrCanceledBySender)
	if snd := s.sender.Load(); snd != nil {
		snd.Cancel(ErrCanceledBySender.Error())
	}
}

// deliver runs the file protocol on a link to the device and returns how
// it ended. Every file leaves this device here: from the retry loop's
// offers and from re-asks alike.
func (s *subTransfer) deliver(link io.ReadWriteCloser, sel ice.Selected, reused bool) (multidevice.State, int64, error) {
	o := s.o
	o.mu.Lock()
	s.st.Relayed, s.st.Link, s.st.Connect, s.st.Reused = sel.Relayed, sel.Link, sel.Elapsed, reused
	if reused {
		s.st.Connect = 0
	}
	o.mu.Unlock()
	o.n.log.Debug("connected", "transfer", o.id, "device", s.dev.Short(), "path", sel.Kind(), "in", sel.Elapsed)
	// The file is opened, and checked to be the one offered, as the
	// transfer starts (offered).
	return s.runSender(link, o.n.offered(o.path, o.name, o.size, o.mod, o.id), true)
}

// runSender runs the file protocol for src on link; progress says whether
// its bytes are the transfer's (a bundle's manifest reports only states).
func (s *subTransfer) runSender(link io.ReadWriteCloser, src transfer.Source, progress bool) (multidevice.State, int64, error) {
	o := s.o
	tcfg := o.n.cfg.Transfer
	tcfg.OnEvent = func(e transfer.Event) {
		switch {
		case e.State.Terminal():
		case progress:
			s.update(multidevice.FromTransfer(e.State), e.Bytes, e.Rate, e.Progress)
		case !e.Progress:
			s.update(multidevice.FromTransfer(e.State), 0, 0, false)
		}
	}
	snd, err := transfer.NewSender(link, src, &tcfg)
	if err != nil {
		link.Close()
		return multidevice.Failed, 0, err
	}
	s.sender.Store(snd)
	defer s.sender.Store(nil)
	if context.Cause(s.ctx) != nil { // canceled while connecting
		snd.Cancel(ErrCanceledBySender.Error())
	}
	_ = snd.Run(s.ctx)
	st := snd.Status()
	return multidevice.FromTransfer(st.State), st.Bytes, st.Err
}

// sourceUnchanged checks that the file is still the one offered: a
// device tried again, or re-asking, must get the same bytes.
func (o *OutgoingTransfer) sourceUnchanged() error {
	if o.bundle != nil { // its manifest; each file is checked as it is sent
		_, err := os.Stat(o.path)
		return err
	}
	return o.n.unchanged(o.path, o.size, o.mod)
}

// canceledOr maps an error of a canceled sub-transfer to the cancel reason.
func (s *subTransfer) canceledOr(err error) error {
	if c := context.Cause(s.ctx); c != nil {
		return c
	}
	return err
}

// update records a non-final state and reports it.
func (s *subTransfer) update(state multidevice.State, bytes int64, rate float64, progress bool) {
	o := s.o
	o.mu.Lock()
	changed := s.st.State != state
	s.st.State, s.st.Bytes, s.st.Rate = state, bytes, rate
	if state != multidevice.Waiting {
		s.st.Retry = time.Time{}
	}
	dev := s.st
	before := o.agg
	o.agg = multidevice.Of(o.devices())
	agg := o.agg
	o.settle()
	o.mu.Unlock()
	kind := EventProgress
	if changed || !progress {
		kind = EventState
	}
	o.n.emit(o.devEvent(dev, kind))
	if agg.State != before.State || agg.Bytes != before.Bytes {
		o.n.emit(o.aggEvent(agg.State != before.State))
	}
	if changed {
		o.saveRecord()
	}
}

// settle closes Settled once no device is being connected to or sent to
// any more. o.mu is held.
func (o *OutgoingTransfer) settle() {
	if isClosed(o.settled) {
		return
	}
	for _, s := range o.subs {
		if st := s.st.State; !st.Terminal() && st != multidevice.Waiting {
			return
		}
	}
	close(o.settled)
}

// finish records the final state of one device, or, when the node is
// closing while the device may still be tried, leaves it waiting for the
// next node. It does nothing if the device already ended.
func (s *subTransfer) finish(state multidevice.State, bytes int64, err error) {
	o := s.o
	cause := context.Cause(s.ctx)
	suspend := !state.Terminal() || (state != multidevice.Finished && cause != nil && !errors.Is(cause, ErrCanceledBySender) &&
		o.n.ctx.Err() != nil && time.Now().Before(o.until))
	switch {
	case suspend:
		state, err = multidevice.Waiting, errInterrupted
	case state == multidevice.Canceled && cause == nil && !isCancel(err):
		state = multidevice.Failed
	}
	if state != multidevice.Finished && err == nil {
		err = errors.New(state.String())
	}
	if state == multidevice.Finished {
		err = nil
	}
	o.mu.Lock()
	if s.ended {
		o.mu.Unlock()
		return
	}
	s.ended, s.looping = true, false
	s.st.State, s.st.Bytes, s.st.Err, s.st.Rate = state, max(bytes, s.st.Bytes), err, 0
	if !suspend {
		s.st.Retry = time.Time{}
	}
	dev := s.st
	o.agg = multidevice.Of(o.devices())
	o.left--
	last := o.left == 0
	o.settle()
	cancel := s.cancel
	o.mu.Unlock()
	cancel(nil)
	s.poke()
	o.n.emit(o.devEvent(dev, EventState))
	o.n.emit(o.aggEvent(true))
	o.saveRecord()
	if last {
		o.n.unregister(o)
		close(o.done)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func isCancel(err error) bool {
	var ce *transfer.CancelError
	return errors.As(err, &ce)
}

func (o *OutgoingTransfer) deviceRecords() []DeviceRecord {
	var out []DeviceRecord
	for _, s := range o.subs {
		out = append(out, deviceRecord(s.st))
	}
	return out
}

func (o *OutgoingTransfer) saveRecord() {
	o.mu.Lock()
	agg, devs := o.agg, o.deviceRecords()
	o.mu.Unlock()
	err := o.n.records.update(o.id, Outgoing, func(r *Record) {
		r.State, r.Bytes = agg.State, agg.Bytes
		r.Error = ""
		if agg.Err != nil {
			r.Error = agg.Err.Error()
		}
		r.Devices = devs
	})
	if err != nil {
		o.n.log.Warn("history not saved", "err", err)
	}
}

// event is the aggregate event (dev zero) of the transfer.
func (o *OutgoingTransfer) aggEvent(state bool) Event {
	a := o.Status()
	kind := EventProgress
	if state {
		kind = EventState
	}
	return Event{Kind: kind, Transfer: o.id, Direction: Outgoing, Peer: o.peer, Name: o.name,
		State: a.State, Bytes: a.Bytes, Total: o.size, Rate: a.Rate, Err: a.Err, Files: o.files()}
}

// files is the number of files of a bundle (zero for one file).
func (o *OutgoingTransfer) files() int {
	if o.bundle == nil {
		return 0
	}
	return o.bundle.sum.Files
}

func (o *OutgoingTransfer) devEvent(d multidevice.Device, kind EventKind) Event {
	e := Event{Kind: kind, Transfer: o.id, Direction: Outgoing, Peer: o.peer, Device: d.Device, DeviceName: d.Name,
		Name: o.name, State: d.State, Bytes: d.Bytes, Total: o.size, Rate: d.Rate, Relayed: d.Relayed, Err: d.Err, Retry: d.Retry}
	if d.State == multidevice.Waiting {
		e.Until = o.until
	}
	return e
}
