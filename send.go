package peerdrop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// OutgoingTransfer is one file sent to every device of a contact.
type OutgoingTransfer struct {
	n    *Node
	id   transfer.ID
	peer identity.AccountID
	name string
	path string
	size int64

	mu   sync.Mutex
	subs []*subTransfer
	agg  multidevice.Aggregate
	done chan struct{}
	left int
}

type subTransfer struct {
	o      *OutgoingTransfer
	entry  signaling.DeviceEntry
	ctx    context.Context
	cancel context.CancelCauseFunc
	sender atomic.Pointer[transfer.Sender]
	st     multidevice.Device // guarded by o.mu
}

// SendFile offers the file at path to every device of the contact, in
// parallel, and returns at once with a handle; ctx bounds only finding
// the contact's devices. The transfers run until they end or are
// canceled (Cancel, CancelDevice, Close).
func (n *Node) SendFile(ctx context.Context, contact identity.AccountID, path string) (*OutgoingTransfer, error) {
	return n.SendFileWithID(ctx, transfer.NewID(), contact, path)
}

// SendFileWithID is SendFile with a transfer ID chosen by the caller, for
// an application that must know the ID before the contact's devices are
// found (an asynchronous UI calls it in the background and files the
// events under id at once). id must be fresh: from transfer.NewID, and not
// in the history.
func (n *Node) SendFileWithID(ctx context.Context, id transfer.ID, contact identity.AccountID, path string) (*OutgoingTransfer, error) {
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
	if !ok {
		return nil, fmt.Errorf("peerdrop: %s: %w", contact.Short(), identity.ErrNoContact)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("peerdrop: %s is not a regular file", path)
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
	o := &OutgoingTransfer{n: n, id: id, peer: contact, name: transfer.SanitizeName(fi.Name()),
		path: abs, size: fi.Size(), done: make(chan struct{}), left: len(list.Devices)}
	for _, e := range list.Devices {
		s := &subTransfer{o: o, entry: e, st: multidevice.Device{Device: e.Device, Name: e.Name, State: multidevice.Connecting, Total: fi.Size()}}
		s.ctx, s.cancel = context.WithCancelCause(n.ctx)
		o.subs = append(o.subs, s)
	}
	o.agg = multidevice.Of(o.devices())
	err = n.records.update(o.id, Outgoing, func(r *Record) {
		r.Peer, r.Name, r.Size, r.Path, r.ModTime = contact, o.name, o.size, abs, fi.ModTime()
		r.State = multidevice.Connecting
		for _, s := range o.subs {
			r.Devices = append(r.Devices, DeviceRecord{Device: s.entry.Device, Name: s.entry.Name, State: multidevice.Connecting})
		}
	})
	if err != nil {
		return nil, err
	}
	n.emit(o.aggEvent(true))
	for _, s := range o.subs {
		if !n.spawn(s.run) {
			s.finish(multidevice.Canceled, 0, ErrClosed)
		}
	}
	return o, nil
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

// Done is closed when every device's part has ended.
func (o *OutgoingTransfer) Done() <-chan struct{} { return o.done }

// Wait waits until every device's part ended and returns nil if at least
// one device received and verified the file, else the aggregate's error
// (a *multidevice.DevicesError naming each device's reason).
func (o *OutgoingTransfer) Wait(ctx context.Context) error {
	select {
	case <-o.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a := o.Status()
	if a.State == multidevice.Finished {
		return nil
	}
	return a.Err
}

// Cancel cancels the transfer on every device still running.
func (o *OutgoingTransfer) Cancel() {
	for _, s := range o.subs {
		s.stop()
	}
}

// CancelDevice cancels the transfer to one device; the others go on.
func (o *OutgoingTransfer) CancelDevice(dev identity.DeviceID) error {
	for _, s := range o.subs {
		if s.entry.Device == dev {
			s.stop()
			return nil
		}
	}
	return fmt.Errorf("peerdrop: device %s is not a recipient of this transfer", dev.Short())
}

func (s *subTransfer) stop() {
	s.cancel(ErrCanceledBySender)
	if snd := s.sender.Load(); snd != nil {
		snd.Cancel(ErrCanceledBySender.Error())
	}
}

func (s *subTransfer) run() {
	n, o := s.o.n, s.o
	peer := s.entry.Peer(o.peer)
	link, sel, err := n.dial(s.ctx, peer, request{kind: kindFile})
	if err != nil {
		s.finish(multidevice.Canceled, 0, s.canceledOr(err))
		return
	}
	o.mu.Lock()
	s.st.Relayed, s.st.Link, s.st.Connect = sel.Relayed, sel.Link, sel.Elapsed
	o.mu.Unlock()
	n.log.Debug("connected", "transfer", o.id, "device", peer.Device.Short(), "path", sel.Kind(), "in", sel.Elapsed)
	tcfg := n.cfg.Transfer
	tcfg.OnEvent = func(e transfer.Event) {
		if !e.State.Terminal() {
			s.update(multidevice.FromTransfer(e.State), e.Bytes, e.Rate, e.Progress)
		}
	}
	snd, err := transfer.NewSender(link, transfer.Source{Path: o.path, Name: o.name, ID: o.id}, &tcfg)
	if err != nil {
		link.Close()
		s.finish(multidevice.Failed, 0, err)
		return
	}
	s.sender.Store(snd)
	if context.Cause(s.ctx) != nil { // canceled while connecting
		snd.Cancel(ErrCanceledBySender.Error())
	}
	_ = snd.Run(s.ctx)
	st := snd.Status()
	s.finish(multidevice.FromTransfer(st.State), st.Bytes, st.Err)
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
	dev := s.st
	before := o.agg
	o.agg = multidevice.Of(o.devices())
	agg := o.agg
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

// finish records the final state of one device.
func (s *subTransfer) finish(state multidevice.State, bytes int64, err error) {
	o := s.o
	if state == multidevice.Canceled && context.Cause(s.ctx) == nil && !isCancel(err) {
		state = multidevice.Failed
	}
	if state != multidevice.Finished && err == nil {
		err = errors.New(state.String())
	}
	if state == multidevice.Finished {
		err = nil
	}
	o.mu.Lock()
	s.st.State, s.st.Bytes, s.st.Err, s.st.Rate = state, max(bytes, s.st.Bytes), err, 0
	dev := s.st
	o.agg = multidevice.Of(o.devices())
	o.left--
	last := o.left == 0
	o.mu.Unlock()
	s.cancel(nil)
	o.n.emit(o.devEvent(dev, EventState))
	o.n.emit(o.aggEvent(true))
	o.saveRecord()
	if last {
		close(o.done)
	}
}

func isCancel(err error) bool {
	var ce *transfer.CancelError
	return errors.As(err, &ce)
}

func (o *OutgoingTransfer) saveRecord() {
	o.mu.Lock()
	agg, devs := o.agg, o.devices()
	o.mu.Unlock()
	err := o.n.records.update(o.id, Outgoing, func(r *Record) {
		r.State, r.Bytes = agg.State, agg.Bytes
		r.Error = ""
		if agg.Err != nil {
			r.Error = agg.Err.Error()
		}
		r.Devices = r.Devices[:0]
		for _, d := range devs {
			dr := DeviceRecord{Device: d.Device, Name: d.Name, State: d.State, Bytes: d.Bytes}
			if d.Err != nil {
				dr.Error = d.Err.Error()
			}
			r.Devices = append(r.Devices, dr)
		}
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
		State: a.State, Bytes: a.Bytes, Total: o.size, Rate: a.Rate, Err: a.Err}
}

func (o *OutgoingTransfer) devEvent(d multidevice.Device, kind EventKind) Event {
	return Event{Kind: kind, Transfer: o.id, Direction: Outgoing, Peer: o.peer, Device: d.Device, DeviceName: d.Name,
		Name: o.name, State: d.State, Bytes: d.Bytes, Total: o.size, Rate: d.Rate, Relayed: d.Relayed, Err: d.Err}
}
