package peerdrop

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// Deferred delivery: a device that cannot be reached now (it does not
// answer, is busy, or the link broke mid-transfer) waits and is tried
// again with backoff until Config.DeliveryWindow has passed since the
// offer; the history keeps waiting devices, so the next Node on the home
// goes on trying them (resumeDeliveries). A waiting device is tried at
// once when there are signs it came online (wakeDeliveries).

// maxRetryWait caps the backoff between tries of a waiting device.
const maxRetryWait = 10 * time.Minute

// run tries the device until it ends: it got the file, refused, was
// canceled, failed for a reason that trying again cannot mend, or the
// delivery window passed.
func (s *subTransfer) run() {
	o := s.o
	wait := o.n.cfg.DeliveryRetry
	for {
		s.busy.Lock()
		if s.isEnded() { // a re-ask delivered it meanwhile
			s.busy.Unlock()
			return
		}
		state, bytes, err := s.attempt()
		if state == multidevice.Finished || !s.retryable(state, err) {
			s.finish(state, bytes, err)
			s.busy.Unlock()
			return
		}
		next := time.Now().Add(jitter(wait))
		if !next.Before(o.until) {
			s.finish(multidevice.Failed, bytes, fmt.Errorf("%w; tried until %s", err, o.until.Format(time.DateTime)))
			s.busy.Unlock()
			return
		}
		s.wait(next, bytes, err)
		s.busy.Unlock()
		wait = min(2*wait, maxRetryWait)
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-s.wake:
			t.Stop()
		case <-s.ctx.Done():
			t.Stop()
			s.busy.Lock()
			s.finish(multidevice.Canceled, bytes, s.canceledOr(nil))
			s.busy.Unlock()
			return
		}
	}
}

func (s *subTransfer) isEnded() bool {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	return s.ended
}

// attempt offers the file to the device once, through signaling.
func (s *subTransfer) attempt() (multidevice.State, int64, error) {
	o := s.o
	o.mu.Lock()
	bytes := s.st.Bytes
	o.mu.Unlock()
	if err := o.sourceUnchanged(); err != nil {
		return multidevice.Failed, bytes, err
	}
	s.update(multidevice.Connecting, bytes, 0, false)
	single := o.bundle == nil && o.size > maxStreamed
	if m := o.n.pooled(s.dev); m != nil && !single {
		var state multidevice.State
		var n int64
		var err error
		if o.bundle != nil {
			state, n, err = s.deliverBundle(m, m.sel, true)
		} else if st, oerr := m.open(); oerr == nil {
			state, n, err = s.deliver(st, m.sel, true)
		}
		if state != 0 && !s.stale(state, err) {
			return state, n, err
		}
		m.retire() // the device went away from it: signal afresh
		s.update(multidevice.Connecting, bytes, 0, false)
	}
	peer, err := s.lookup()
	if err != nil {
		return multidevice.Failed, bytes, s.canceledOr(err)
	}
	link, sel, err := o.n.dial(s.ctx, peer, request{kind: kindFile, single: single, bundle: o.bundle != nil})
	if err != nil {
		return multidevice.Failed, bytes, s.canceledOr(err)
	}
	m, err := o.n.adopt(link, sel, peer, true)
	switch {
	case err != nil:
		return multidevice.Failed, bytes, s.canceledOr(err)
	case m == nil && o.bundle != nil:
		link.Close()
		return multidevice.Failed, bytes, errNoStreams
	case m == nil: // the device speaks peerdrop/1 only
		return s.deliver(link, sel, false)
	case o.bundle != nil:
		return s.deliverBundle(m, sel, false)
	}
	st, err := m.open()
	if err != nil {
		return multidevice.Failed, bytes, s.canceledOr(err)
	}
	return s.deliver(st, sel, false)
}

// stale reports whether a transfer on a kept link failed before any
// data moved, for the link's sake rather than the device's answer: the
// link outlived the device's node (it closed or went offline), and a
// fresh request may find it.
func (s *subTransfer) stale(state multidevice.State, err error) bool {
	s.o.mu.Lock()
	before := s.st.State == multidevice.Connecting || s.st.State == multidevice.AwaitingPeer
	s.o.mu.Unlock()
	var re *transfer.RefusedError
	return state == multidevice.Failed && before && context.Cause(s.ctx) == nil && err != nil &&
		!isCancel(err) && !errors.As(err, &re)
}

// lookup returns the device's signaling identity: known since the offer,
// or (for a transfer restored from the history) from the contact's list.
func (s *subTransfer) lookup() (signaling.Peer, error) {
	o := s.o
	o.mu.Lock()
	p := s.peer
	o.mu.Unlock()
	if p.Sealing != nil {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, o.n.cfg.RequestTimeout)
	defer cancel()
	if err := o.n.waitReady(ctx); err != nil {
		return p, &unreachedError{err}
	}
	list, err := o.n.dir.Lookup(ctx, o.peer)
	if err != nil {
		return p, &unreachedError{fmt.Errorf("cannot find the devices of %s: %w", o.peer.Short(), err)}
	}
	e, ok := list.Entry(s.dev)
	if !ok {
		return p, fmt.Errorf("device %s is no longer a device of %s", s.dev.Short(), o.peer.Short())
	}
	p = e.Peer(o.peer)
	o.mu.Lock()
	s.peer = p
	o.mu.Unlock()
	return p, nil
}

// retryable says whether a device whose attempt ended so may be tried
// again: it did not answer, signaling could not reach it, it was busy, or
// the link broke or went silent mid-transfer (the next attempt resumes).
// A refusal, a cancel, a digest mismatch, a path ICE cannot find or a
// changed file are final.
func (s *subTransfer) retryable(state multidevice.State, err error) bool {
	if s.o.until.IsZero() || context.Cause(s.ctx) != nil || state == multidevice.Refused || err == nil {
		return false
	}
	var ne *NoError
	var ue *unreachedError
	switch {
	case errors.Is(err, ErrNoAnswer), errors.As(err, &ue):
		return true
	case errors.As(err, &ne):
		return ne.Code == NoBusy || ne.Code == NoShutdown
	case isCancel(err):
		var ce *transfer.CancelError
		errors.As(err, &ce)
		return ce.Remote && ce.Code == transfer.CancelShutdown
	}
	return errors.Is(err, transfer.ErrLinkFailed) || errors.Is(err, transfer.ErrTimeout)
}

// unreachedError: signaling could not carry a request to the device (no
// DHT node or proxy answered, or its device list could not be read).
type unreachedError struct{ err error }

func (e *unreachedError) Error() string { return e.err.Error() }
func (e *unreachedError) Unwrap() error { return e.err }

// wait marks the device waiting until next.
func (s *subTransfer) wait(next time.Time, bytes int64, why error) {
	o := s.o
	o.mu.Lock()
	s.st.Retry, s.st.Err = next, why
	o.mu.Unlock()
	o.n.log.Info("device waits", "transfer", o.id, "device", s.dev.Short(), "retry", next.Format(time.TimeOnly), "why", why)
	s.update(multidevice.Waiting, bytes, 0, false)
}

// jitter spreads d by ±20%, so that devices started together do not try
// again together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// poke wakes the device's retry loop.
func (s *subTransfer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// wakeDeliveries tries waiting devices now: those of account (every
// device of it when dev is zero), or all with a zero account.
func (n *Node) wakeDeliveries(account identity.AccountID, dev identity.DeviceID) {
	n.mu.Lock()
	var subs []*subTransfer
	for _, o := range n.outgoing {
		if !account.IsZero() && o.peer != account {
			continue
		}
		o.mu.Lock()
		for _, s := range o.subs {
			if s.looping && s.st.State == multidevice.Waiting && (dev.IsZero() || s.dev == dev) {
				subs = append(subs, s)
			}
		}
		o.mu.Unlock()
	}
	n.mu.Unlock()
	for _, s := range subs {
		s.poke()
	}
}

// register makes o the running transfer of its ID: re-asks and wakes
// find it.
func (n *Node) register(o *OutgoingTransfer) {
	n.mu.Lock()
	n.outgoing[o.id] = o
	n.mu.Unlock()
}

func (n *Node) unregister(o *OutgoingTransfer) {
	n.mu.Lock()
	if n.outgoing[o.id] == o {
		delete(n.outgoing, o.id)
	}
	n.mu.Unlock()
}

// Outgoing returns the running outgoing transfer id (one with a device
// being sent to or waiting), if any.
func (n *Node) Outgoing(id transfer.ID) (*OutgoingTransfer, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o, ok := n.outgoing[id]
	return o, ok
}

// resumeDeliveries goes on with the transfers of the history that have
// devices waiting (the last Node stopped while they waited).
func (n *Node) resumeDeliveries() {
	for _, rec := range n.records.list() {
		if rec.Direction != Outgoing || rec.State.Terminal() {
			continue
		}
		o := n.restore(rec)
		if o.left == 0 { // no device left to try
			continue
		}
		n.log.Info("delivery resumed", "transfer", o.id, "name", o.name, "waiting", o.left, "until", o.until)
		n.register(o)
		o.start()
	}
}

// restore makes the transfer of an outgoing record; its devices that had
// not ended are waiting.
func (n *Node) restore(rec Record) *OutgoingTransfer {
	o := n.newOutgoing(rec.ID, rec.Peer, rec.Name, rec.Path, rec.Size, rec.ModTime)
	o.until = rec.Until
	var lost error
	if rec.MediaType == ManifestType {
		if o.bundle, lost = loadBundle(rec.Path); lost != nil {
			lost = fmt.Errorf("peerdrop: the offer's manifest is lost: %w", lost)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range rec.Devices {
		md := d.device(rec.Size)
		switch {
		case md.State.Terminal():
		case lost != nil:
			md.State, md.Err = multidevice.Failed, lost
		default:
			md.State = multidevice.Waiting
		}
		o.addSub(md, signaling.Peer{})
	}
	o.agg = multidevice.Of(o.devices())
	return o
}

// serveReask sends a transfer again to a device of its recipient account
// that asks for it (to resume after a failure), through the same path as
// every other delivery (deliver).
func (n *Node) serveReask(in *signaling.Incoming, req request) {
	s, code := n.reaskSub(req.id, in.From)
	if code != 0 {
		n.answerNo(in, code, "")
		return
	}
	if !s.busy.TryLock() { // an attempt of its own runs
		n.answerNo(in, NoBusy, "")
		return
	}
	defer s.busy.Unlock()
	link, sel, err := n.answer(s.ctx, in, req)
	if err != nil {
		n.log.Info("re-ask connection failed", "transfer", req.id, "err", err)
		s.afterReask(multidevice.Failed, 0, err)
		return
	}
	if s.o.bundle == nil {
		state, bytes, err := s.deliver(link, sel, false)
		s.afterReask(state, bytes, err)
		return
	}
	// Many files go in streams: the device asked for a link with them.
	m, err := n.adopt(link, sel, in.From, false)
	if err == nil && m == nil {
		link.Close()
		err = errNoStreams
	}
	if err != nil {
		s.afterReask(multidevice.Failed, 0, err)
		return
	}
	state, bytes, err := s.deliverBundle(m, sel, false)
	s.afterReask(state, bytes, err)
}

// afterReask records a re-ask's outcome: a device with a retry loop that
// can be tried again waits; anything else ends it.
func (s *subTransfer) afterReask(state multidevice.State, bytes int64, err error) {
	o := s.o
	o.mu.Lock()
	looping, retry := s.looping, s.st.Retry
	o.mu.Unlock()
	if looping && state != multidevice.Finished && s.retryable(state, err) {
		s.wait(retry, bytes, err)
		return
	}
	s.finish(state, bytes, err)
}

// reaskSub finds the sub-transfer a re-ask of transfer id from a device
// is for: in the running transfer, or in one restored from the history
// (with the file unchanged). A device the transfer did not know (added
// to the account since) gets a sub-transfer of its own.
func (n *Node) reaskSub(id transfer.ID, from signaling.Peer) (*subTransfer, NoCode) {
	if o, ok := n.Outgoing(id); ok {
		if o.peer != from.Account {
			return nil, NoNotAllowed
		}
		if s := o.join(from); s != nil {
			return s, 0
		}
	}
	rec, ok := n.records.get(id, Outgoing)
	switch {
	case !ok:
		return nil, NoUnknown
	case rec.Peer != from.Account:
		return nil, NoNotAllowed
	}
	o := n.restore(rec)
	if o.sourceUnchanged() != nil {
		return nil, NoChanged
	}
	// Its devices still waiting (a ShortLived node's) are left to the
	// next long-running node: only the asking one is served here.
	o.mu.Lock()
	for _, s := range o.subs {
		if !s.ended {
			s.ended = true
			o.left--
		}
	}
	o.mu.Unlock()
	s := o.join(from)
	n.register(o)
	return s, 0
}

// join returns the sub-transfer for a device that asks for the file again,
// running again if it had ended; nil if the whole transfer has ended.
func (o *OutgoingTransfer) join(from signaling.Peer) *subTransfer {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.left == 0 && isClosed(o.done) {
		return nil
	}
	for _, s := range o.subs {
		if s.dev != from.Device {
			continue
		}
		s.peer = from
		if s.ended {
			s.ended = false
			s.ctx, s.cancel = context.WithCancelCause(o.n.ctx)
			s.st.State, s.st.Err, s.st.Retry = multidevice.Connecting, nil, time.Time{}
			o.left++
		}
		return s
	}
	return o.addSub(multidevice.Device{Device: from.Device, State: multidevice.Connecting}, from)
}
