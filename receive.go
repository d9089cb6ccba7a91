package peerdrop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/manifest"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// IncomingTransfer is a file offered to this device: accept it (into the
// download directory or a destination of your choice), refuse it, or
// cancel it while it runs.
type IncomingTransfer struct {
	n     *Node
	r     *transfer.Receiver
	offer Offer
	relay bool

	once sync.Once // one decision
	done chan struct{}
	// Of many files: the bundle once its manifest is in, and the final
	// status (set before done is closed).
	bundle atomic.Pointer[inBundle]
	final  atomic.Pointer[transfer.Status]
}

// Offer is what the sender offered.
func (t *IncomingTransfer) Offer() Offer { return t.offer }

// Status is the transfer's state and progress (of many files: of them
// all, once their list is in).
func (t *IncomingTransfer) Status() transfer.Status {
	if f := t.final.Load(); f != nil {
		return *f
	}
	if b := t.bundle.Load(); b != nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		return transfer.Status{State: transfer.StateOngoing, Bytes: b.bytes}
	}
	return t.r.Status()
}

// Done is closed when the transfer ended (saved, refused, canceled or
// failed) and its record is saved.
func (t *IncomingTransfer) Done() <-chan struct{} { return t.done }

// Wait waits for the end and returns the saved file's path, or why there
// is none.
func (t *IncomingTransfer) Wait(ctx context.Context) (string, error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	st := t.Status()
	if st.State == transfer.StateFinished {
		return st.Path, nil
	}
	return "", st.Err
}

// Accept starts receiving into dst (zero: the download directory; a
// partial file of an earlier attempt is resumed) and returns at once;
// see Done and Wait.
func (t *IncomingTransfer) Accept(dst transfer.Destination) error {
	if t.n.closed.Load() {
		return ErrClosed
	}
	ok := false
	t.once.Do(func() { ok = true })
	if !ok {
		return errors.New("peerdrop: this offer was already decided")
	}
	if dst.Dir == "" && dst.Path == "" {
		dst.Dir = t.n.cfg.DownloadDir
	}
	dir := dst.Dir
	if dst.Path != "" {
		dir = ""
	}
	if t.offer.Files > 0 { // many files: the folders go in dir, the list in the inbox
		if dst.Path != "" {
			dir = dst.Path
		}
		dst = transfer.Destination{Path: t.n.manifestPath(t.offer.Transfer), Overwrite: true}
		if err := os.MkdirAll(filepath.Dir(dst.Path), 0o700); err != nil {
			t.r.Cancel(err.Error())
			return err
		}
	}
	_ = t.n.records.update(t.offer.Transfer, Incoming, func(r *Record) {
		r.Dir = dir
		if dst.Path != "" && t.offer.Files == 0 {
			r.Path = dst.Path
		}
	})
	if !t.n.spawn(func() { _, _ = t.r.Accept(t.n.ctx, dst) }) {
		t.r.Stop("the receiving node is closing")
		return ErrClosed
	}
	return nil
}

// Refuse declines the offer; the sender's device sees the reason.
func (t *IncomingTransfer) Refuse(reason string) error {
	err := errors.New("peerdrop: this offer was already decided")
	t.once.Do(func() { err = t.r.Refuse(reason) })
	return err
}

// Cancel stops the transfer (decided or not); a partial file is kept for
// a later re-ask.
func (t *IncomingTransfer) Cancel(reason string) {
	t.once.Do(func() {})
	t.r.Cancel(reason)
}

// expect registers a re-ask of transfer id: its next offer goes to the
// channel (see awaitOffer). stop unregisters it.
func (n *Node) expect(id transfer.ID) (offers <-chan *IncomingTransfer, stop func()) {
	ch := make(chan *IncomingTransfer, 1)
	n.mu.Lock()
	n.reasked[id] = ch
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		if n.reasked[id] == ch {
			delete(n.reasked, id)
		}
		n.mu.Unlock()
	}
}

// awaitOffer waits up to d for the offer of transfer id that a re-ask
// expects, running already or yet to come, and returns it, or nil.
func (n *Node) awaitOffer(ctx context.Context, offers <-chan *IncomingTransfer, id transfer.ID, d time.Duration) *IncomingTransfer {
	n.mu.Lock()
	in := n.inflight[id]
	n.mu.Unlock()
	if in != nil {
		return in
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case in := <-offers:
		return in
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// serve takes verified requests from the signaler.
func (n *Node) serve() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case in := <-n.sig.Incoming():
			n.spawn(func() {
				n.handle(in)
			})
		}
	}
}

func (n *Node) handle(in *signaling.Incoming) {
	req, err := parseRequest(in.Msg.Payload)
	if err != nil {
		n.refused.Add(1)
		n.log.Info("bad request dropped", "from", in.From.Account.Short(), "err", err)
		return
	}
	select {
	case n.incoming <- struct{}{}:
		defer func() { <-n.incoming }()
	default:
		n.answerNo(in, NoBusy, "")
		return
	}
	// A request shows the device is online: deliveries waiting for it
	// go now.
	n.wakeDeliveries(in.From.Account, in.From.Device)
	switch req.kind {
	case kindFile:
		n.receiveOffer(in, req)
	case kindReask:
		n.serveReask(in, req)
	}
}

// receiveOffer connects back to a contact's device that offers a file.
func (n *Node) receiveOffer(in *signaling.Incoming, req request) {
	link, sel, err := n.answer(n.ctx, in, req)
	if err != nil {
		n.log.Info("incoming connection failed", "from", in.From.Account.Short(), "device", in.From.Device.Short(), "err", err)
		return
	}
	m, err := n.adopt(link, sel, in.From, false)
	switch {
	case err != nil:
		n.log.Info("incoming link failed", "from", in.From.Account.Short(), "err", err)
	case m == nil:
		n.offerOn(link, in.From, sel.Relayed)
	}
	// Otherwise the offer comes in a stream of the link (muxLink.serve).
}

// offerStream takes an offer in a stream of a kept link, within
// MaxIncoming; beyond it the stream is closed (the sender tries again).
func (n *Node) offerStream(st io.ReadWriteCloser, from signaling.Peer, relayed bool) {
	select {
	case n.incoming <- struct{}{}:
		defer func() { <-n.incoming }()
	default:
		st.Close()
		return
	}
	n.offerOn(st, from, relayed)
}

// offerOn reads an offer on a link (or a stream of one) and hands it to
// the application, or accepts it by policy, then follows it to its end.
func (n *Node) offerOn(link io.ReadWriteCloser, from signaling.Peer, relayed bool) {
	t, err := n.receive(link, from, relayed)
	if errors.Is(err, errMember) {
		return
	}
	if err != nil {
		n.log.Info("incoming offer failed", "from", from.Account.Short(), "err", err)
		return
	}
	if dst, ok := n.resumable(t.offer); ok {
		// Offered again after an accepted attempt broke off (the sender
		// tries waiting devices again): the decision stands.
		_ = t.Accept(dst)
	} else if n.cfg.AutoAccept != nil && n.cfg.AutoAccept(t.offer) {
		_ = t.Accept(transfer.Destination{})
	} else {
		select {
		case n.offers <- t:
		default:
			_ = t.Refuse("busy: too many undecided offers")
		}
	}
	n.track(t)
}

// receive reads the offer on an authenticated link and records it.
func (n *Node) receive(link io.ReadWriteCloser, from signaling.Peer, relayed bool) (*IncomingTransfer, error) {
	var holder struct {
		sync.Mutex
		t *IncomingTransfer
	}
	tcfg := n.cfg.Transfer
	tcfg.OnEvent = func(e transfer.Event) {
		holder.Lock()
		t := holder.t
		holder.Unlock()
		if t != nil && !e.State.Terminal() && (t.offer.Files == 0 || !e.Progress) { // a list's bytes are not the files'
			kind := EventState
			if e.Progress {
				kind = EventProgress
			}
			n.emit(t.event(kind, e.Status))
		}
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ConnectTimeout)
	defer cancel()
	r, err := transfer.Receive(ctx, link, &tcfg)
	if err != nil {
		return nil, err
	}
	o := r.Offer()
	if _, member := o.Metadata[metaBundle]; member {
		n.receiveMember(r, from)
		return nil, errMember
	}
	c, _ := n.contact(from.Account)
	t := &IncomingTransfer{n: n, r: r, relay: relayed, done: make(chan struct{}), offer: Offer{
		Transfer: o.ID, From: from.Account, Device: from.Device, Contact: c.Name,
		Name: o.SafeName(), Size: o.Size, MediaType: o.MediaType}}
	if o.MediaType == ManifestType {
		files, bytes, tops, ok := bundleSummary(o)
		if !ok {
			r.Refuse("malformed offer of many files")
			return nil, fmt.Errorf("transfer %s: malformed offer of many files", o.ID)
		}
		t.offer.Files, t.offer.Size, t.offer.Tops = files, bytes, safeTops(tops)
		t.offer.Name = displayName(manifest.Summary{Tops: t.offer.Tops})
	}
	if why := offerConflict(n.records, o.ID, from.Account); why != "" {
		r.Refuse(why)
		return nil, fmt.Errorf("transfer %s refused: %s", o.ID, why)
	}
	n.mu.Lock()
	_, dup := n.inflight[o.ID]
	if !dup {
		n.inflight[o.ID] = t
		if ch := n.reasked[o.ID]; ch != nil {
			select {
			case ch <- t:
			default:
			}
		}
	}
	n.mu.Unlock()
	if dup {
		r.Cancel("this transfer is already running")
		return nil, fmt.Errorf("transfer %s is already running", o.ID)
	}
	holder.Lock()
	holder.t = t
	holder.Unlock()
	_ = n.records.update(o.ID, Incoming, func(rec *Record) {
		rec.Peer, rec.PeerDevice, rec.Name, rec.Size, rec.MediaType = from.Account, from.Device, t.offer.Name, t.offer.Size, o.MediaType
		rec.Files = t.offer.Files
		rec.State, rec.Error = multidevice.AwaitingDecision, ""
	})
	n.emit(t.event(EventOffer, r.Status()))
	return t, nil
}

// offerConflict says why an offer of transfer id from account must not
// go on, or "" if it may: the history's record of id is another
// account's transfer, or a transfer already received. An offer of a
// known, unfinished transfer from its own sender is a resume. The record
// is left as it is.
func offerConflict(recs *records, id transfer.ID, from identity.AccountID) string {
	rec, ok := recs.get(id, Incoming)
	switch {
	case !ok:
		return ""
	case rec.Peer != from:
		return "this transfer ID belongs to another transfer"
	case rec.State == multidevice.Finished:
		return "this transfer was already received"
	}
	return ""
}

// resumable returns where an offer goes that this device accepted before,
// in an attempt that ended without the file and whose partial file is
// kept: the offer resumes there without asking again.
func (n *Node) resumable(o Offer) (transfer.Destination, bool) {
	rec, ok := n.records.get(o.Transfer, Incoming)
	if !ok || rec.Peer != o.From || rec.Size != o.Size || rec.PartialRemoved || (rec.Dir == "" && rec.Path == "") {
		return transfer.Destination{}, false
	}
	if rec.Dir != "" {
		return transfer.Destination{Dir: rec.Dir}, true
	}
	return transfer.Destination{Path: rec.Path}, true
}

// track waits for the end of an incoming transfer and records it.
func (n *Node) track(t *IncomingTransfer) {
	select {
	case <-t.r.Done():
	case <-n.ctx.Done():
		t.r.Stop("the receiving node is closing")
		<-t.r.Done()
	}
	st := t.r.Status()
	if t.offer.Files > 0 && st.State == transfer.StateFinished {
		st = n.trackBundle(t)
	}
	t.final.Store(&st)
	state := multidevice.FromTransfer(st.State)
	_ = n.records.update(t.offer.Transfer, Incoming, func(rec *Record) {
		rec.State, rec.Bytes, rec.Error = state, st.Bytes, ""
		if st.Err != nil {
			rec.Error = st.Err.Error()
		}
		if st.Path != "" {
			rec.Path = st.Path
		}
	})
	n.mu.Lock()
	delete(n.inflight, t.offer.Transfer)
	n.mu.Unlock()
	n.emit(t.event(EventState, st))
	close(t.done)
}

func (t *IncomingTransfer) event(kind EventKind, st transfer.Status) Event {
	return Event{Kind: kind, Transfer: t.offer.Transfer, Direction: Incoming, Peer: t.offer.From, Device: t.offer.Device,
		Name: t.offer.Name, State: multidevice.FromTransfer(st.State), Bytes: st.Bytes, Total: t.offer.Size, Rate: st.Rate,
		Relayed: t.relay, Path: st.Path, Err: st.Err, Files: t.offer.Files}
}

// Reask asks the device that sent an incoming transfer to send it again,
// and resumes from the partial file kept by the failed or canceled
// attempt; the digest of the whole file is verified. It returns once the
// sender agreed and the transfer runs.
func (n *Node) Reask(ctx context.Context, id transfer.ID) (*IncomingTransfer, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	rec, ok := n.records.get(id, Incoming)
	if !ok {
		return nil, fmt.Errorf("peerdrop: %s: %w", id, ErrUnknownTransfer)
	}
	if rec.State == multidevice.Finished {
		return nil, fmt.Errorf("peerdrop: %s was already received (%s)", id, rec.Path)
	}
	n.mu.Lock()
	_, running := n.inflight[id]
	n.mu.Unlock()
	if running {
		return nil, fmt.Errorf("peerdrop: %s is still running", id)
	}
	// The sender may offer it by itself meanwhile (a device it tries
	// again): that offer is this re-ask's.
	offers, stop := n.expect(id)
	defer stop()
	if err := n.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("peerdrop: joining the DHT: %w", err)
	}
	list, err := n.dir.Lookup(ctx, rec.Peer)
	if err != nil {
		return nil, fmt.Errorf("peerdrop: cannot find the sender's devices: %w", err)
	}
	e, ok := list.Entry(rec.PeerDevice)
	if !ok {
		return nil, fmt.Errorf("peerdrop: the sending device %s is no longer a device of %s", rec.PeerDevice.Short(), rec.Peer.Short())
	}
	if rec.Files > 0 {
		return n.reaskBundle(ctx, e.Peer(rec.Peer), id, offers)
	}
	link, sel, err := n.dial(ctx, e.Peer(rec.Peer), request{kind: kindReask, id: id})
	var no *NoError
	if errors.As(err, &no) && no.Code == NoBusy {
		// The sender is offering it to this device right now (it tries
		// devices again, Config.DeliveryWindow): that is the resume.
		if t := n.awaitOffer(ctx, offers, id, n.cfg.ConnectTimeout); t != nil {
			return t, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("peerdrop: re-ask %s: %w", id, err)
	}
	t, err := n.receive(link, e.Peer(rec.Peer), sel.Relayed)
	if err != nil {
		return nil, err
	}
	if t.offer.Transfer != id {
		t.Cancel("not the transfer asked for")
		n.track(t)
		return nil, fmt.Errorf("peerdrop: re-ask %s: the sender offered %s", id, t.offer.Transfer)
	}
	dst := transfer.Destination{Dir: rec.Dir, Path: rec.Path}
	if rec.Dir == "" && rec.Path == "" {
		dst.Dir = n.cfg.DownloadDir
	}
	if rec.Dir != "" {
		dst.Path = ""
	}
	if err := t.Accept(dst); err != nil {
		t.r.Cancel(err.Error())
		n.track(t)
		return nil, err
	}
	if !n.spawn(func() { n.track(t) }) {
		n.track(t) // the node is closing: track returns at once
	}
	return t, nil
}

// reaskBundle asks the sending device for the files of an offer of many
// that did not all arrive: on a link with streams, where the sender
// offers the manifest again (accepted here without asking: see
// resumable) and then the files this device lacks.
func (n *Node) reaskBundle(ctx context.Context, from signaling.Peer, id transfer.ID, offers <-chan *IncomingTransfer) (*IncomingTransfer, error) {
	link, sel, err := n.dial(ctx, from, request{kind: kindReask, id: id, bundle: true})
	var no *NoError
	if err != nil && !(errors.As(err, &no) && no.Code == NoBusy) {
		return nil, fmt.Errorf("peerdrop: re-ask %s: %w", id, err)
	}
	if err == nil { // else the sender is offering it to this device right now
		m, err := n.adopt(link, sel, from, true)
		if err != nil {
			return nil, fmt.Errorf("peerdrop: re-ask %s: %w", id, err)
		}
		if m == nil {
			link.Close()
			return nil, fmt.Errorf("peerdrop: re-ask %s: %w", id, errNoStreams)
		}
	}
	if t := n.awaitOffer(ctx, offers, id, n.cfg.ConnectTimeout); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("peerdrop: re-ask %s: the sender did not offer it again", id)
}
