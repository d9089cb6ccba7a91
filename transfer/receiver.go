package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Destination says where an accepted file goes.
type Destination struct {
	// Dir saves the file in this existing directory under the sanitized
	// offered name (see SanitizeName).
	Dir string
	// Path saves the file at exactly this path (its directory must exist).
	// It takes precedence over Dir.
	Path string
	// Overwrite replaces an existing file at the final path. By default an
	// existing file is kept and the new one gets a " (n)" suffix.
	Overwrite bool
	// NoResume discards a partial file left by an earlier attempt at the
	// same transfer instead of resuming from it.
	NoResume bool
	// Sink, if set, takes the bytes instead of a file: Dir, Path,
	// Overwrite and NoResume are then unused, and the transfer starts at
	// offset 0 (a Sink does not resume).
	Sink Sink
}

// Sink receives a transfer's bytes, in order, instead of a file
// (Destination.Sink): a receiver that cuts them into several files, say.
// Write is called from the Receiver's reading goroutine, Commit and Abort
// after the last Write; exactly one of them is called.
type Sink interface {
	io.Writer
	// Commit is called once every byte arrived and the digest verified,
	// before the sender is told so (ACK): it makes the bytes durable where
	// they belong and returns the path to report (Status.Path). An error
	// fails the transfer, and the sender hears that saving failed.
	Commit() (string, error)
	// Abort is called when the transfer ends any other way (refused in
	// the end, canceled, failed, digest mismatch): the Sink removes what
	// it wrote.
	Abort()
}

// Receiver runs the receiving side of one transfer: it holds the offer
// until the application calls Accept, Refuse or Cancel.
type Receiver struct {
	cfg   *Config
	c     *conn
	offer Offer
	tr    tracker

	cmds       chan rxCmd
	events     chan rxEvent
	quit       chan struct{} // closed when the controller ends
	readerDone chan struct{}
	done       chan struct{}
	sink       atomic.Pointer[sink]

	cancelOnce sync.Once
	cancelCh   chan struct{}
	cancelWhy  *CancelError

	// linger is set (by the controller) when this side sent the
	// protocol's last frame, so it waits for the sender to close first.
	linger bool
	// stopping tells the reader to stop writing data: the transfer is
	// ending (canceled or failed) and the rest is discarded.
	stopping atomic.Bool
}

// sink is where accepted data goes. The reader goroutine owns it until it
// forwards END; the controller owns it after.
type sink struct {
	f        *os.File
	w        Sink // instead of f, partial, dir and name
	h        hash.Hash
	partial  string
	dir      string
	name     string
	dst      Destination
	offset   int64
	written  int64
	released bool
}

// write writes p to the partial file or the Sink.
func (s *sink) write(p []byte) (int, error) {
	if s.w != nil {
		n, err := s.w.Write(p)
		if err != nil {
			err = fmt.Errorf("transfer: write: %w", err)
		}
		return n, err
	}
	n, err := s.f.Write(p)
	if err != nil {
		err = fmt.Errorf("transfer: write %s: %w", s.partial, err)
	}
	return n, err
}

type rxCmd struct {
	accept bool // else refuse
	dst    Destination
	reason string
	reply  chan error
}

type rxEvent struct {
	t     frameType
	alg   DigestAlgorithm
	sum   []byte
	code  CancelCode
	text  string
	err   error
	local bool // err is a local I/O error, not the peer's fault
}

// Receive reads the sender's offer from rw, which the Receiver owns from
// now on (closed when the transfer ends, or now on error). ctx bounds the
// wait for the offer only. A sender that cancels before its offer gives a
// *CancelError.
func Receive(ctx context.Context, rw io.ReadWriteCloser, cfg *Config) (*Receiver, error) {
	cfg = cfg.withDefaults()
	c := newConn(rw)
	c.watch(cfg.IdleTimeout)
	stop := context.AfterFunc(ctx, func() { c.close() })
	offer, err := readOffer(c)
	if !stop() {
		c.close()
		return nil, fmt.Errorf("transfer: waiting for offer: %w", context.Cause(ctx))
	}
	c.unwatch()
	if err != nil {
		var pe *ProtocolError
		var ve *VersionError
		if errors.As(err, &pe) || errors.As(err, &ve) {
			c.watch(cfg.LingerTimeout)
			c.writeFrame(frameCancel, appendCancel(nil, CancelProtocol, err.Error()))
		}
		c.close()
		return nil, err
	}
	r := &Receiver{
		cfg: cfg, c: c, offer: *offer,
		tr:   tracker{cfg: cfg, st: Status{ID: offer.ID, Total: offer.Size}},
		cmds: make(chan rxCmd), events: make(chan rxEvent, 4), quit: make(chan struct{}),
		readerDone: make(chan struct{}), done: make(chan struct{}), cancelCh: make(chan struct{}),
	}
	r.tr.st.State = StateAwaitingDecision
	r.tr.emit(Event{Status: r.tr.status()})
	go r.readLoop()
	go r.run()
	return r, nil
}

func readOffer(c *conn) (*Offer, error) {
	if err := readHello(c.br); err != nil {
		return nil, c.ioErr(err)
	}
	var buf []byte
	t, p, err := c.readFrame(&buf)
	if err != nil {
		return nil, err
	}
	switch t {
	case frameHeader:
		return parseHeader(p)
	case frameCancel:
		code, text, err := parseCancel(p)
		if err != nil {
			return nil, err
		}
		return nil, &CancelError{Code: code, Reason: text, Remote: true}
	}
	return nil, protoErrorf("expected HEADER, got %v", t)
}

// Offer returns the sender's offer.
func (r *Receiver) Offer() Offer { return r.offer }

// Status returns a snapshot of the transfer.
func (r *Receiver) Status() Status { return r.tr.status() }

// Done is closed when the transfer has ended and released everything.
func (r *Receiver) Done() <-chan struct{} { return r.done }

// Accept tells the sender to go, receives the file into dst (resuming a
// partial file of the same transfer unless dst.NoResume), verifies its
// digest and saves it. It returns the path of the saved file once the
// whole file is verified and synced to disk. Cancelling ctx cancels the
// transfer.
func (r *Receiver) Accept(ctx context.Context, dst Destination) (string, error) {
	reply := make(chan error, 1)
	select {
	case r.cmds <- rxCmd{accept: true, dst: dst, reply: reply}:
	case <-r.done:
		return "", r.endErr()
	}
	if err := <-reply; err != nil {
		return "", err
	}
	stop := context.AfterFunc(ctx, func() { r.cancel(CancelByUser, context.Cause(ctx).Error()) })
	defer stop()
	<-r.done
	st := r.Status()
	if st.State == StateFinished {
		return st.Path, nil
	}
	return "", st.Err
}

// Refuse declines the offer, telling the sender reason, and waits until
// the stream is released.
func (r *Receiver) Refuse(reason string) error {
	reply := make(chan error, 1)
	select {
	case r.cmds <- rxCmd{reason: reason, reply: reply}:
	case <-r.done:
		return r.endErr()
	}
	err := <-reply
	<-r.done
	return err
}

// Cancel stops the transfer at any phase, telling the sender why; a
// partial file is kept for a later resume. It does not wait (see Done).
func (r *Receiver) Cancel(reason string) { r.cancel(CancelByUser, reason) }

// Stop is Cancel by an application that is shutting down (code
// CancelShutdown): the sender may offer the file again later, and resume.
// It does not wait (see Done).
func (r *Receiver) Stop(reason string) { r.cancel(CancelShutdown, reason) }

// Close cancels the transfer if it has not ended and waits until
// everything is released.
func (r *Receiver) Close() error {
	r.cancel(CancelShutdown, "receiver closed")
	<-r.done
	return nil
}

func (r *Receiver) cancel(code CancelCode, reason string) {
	r.cancelOnce.Do(func() {
		r.cancelWhy = &CancelError{Code: code, Reason: reason}
		close(r.cancelCh)
	})
}

func (r *Receiver) endErr() error {
	if err := r.Status().Err; err != nil {
		return err
	}
	return ErrNotAwaiting
}

// run is the controller: it owns the state and every write after the offer.
func (r *Receiver) run() {
	defer close(r.done)
	for !r.tr.status().State.Terminal() {
		select {
		case cmd := <-r.cmds:
			if r.tr.status().State != StateAwaitingDecision {
				cmd.reply <- ErrNotAwaiting
				continue
			}
			if cmd.accept {
				cmd.reply <- r.start(cmd.dst)
				continue
			}
			err := r.c.writeFrame(frameRefuse, appendRefuse(nil, cmd.reason))
			r.tr.set(StateRefused, &RefusedError{Reason: cmd.reason})
			r.linger = true
			cmd.reply <- err
		case ev := <-r.events:
			r.handle(ev)
		case <-r.cancelCh:
			r.abort(r.cancelWhy, r.cancelWhy)
		}
	}
	close(r.quit)
	if r.linger {
		r.c.lingerClose(r.readerDone, r.cfg.LingerTimeout)
	} else {
		r.c.close()
	}
	<-r.readerDone
	r.releaseSink(false)
}

// start opens (or reopens) the partial file and sends GO.
func (r *Receiver) start(dst Destination) error {
	s, err := r.openSink(dst)
	if err != nil {
		r.abort(&CancelError{Code: CancelIO, Reason: "receiver cannot write the file"}, err)
		return err
	}
	r.sink.Store(s)
	r.tr.mu.Lock()
	r.tr.st.Offset, r.tr.st.Bytes = s.offset, s.offset
	r.tr.mu.Unlock()
	r.tr.set(StateOngoing, nil)
	r.c.watch(r.cfg.IdleTimeout)
	if err := r.c.writeFrame(frameGo, appendGo(nil, s.offset)); err != nil {
		r.stopping.Store(true)
		r.tr.set(StateFailed, fmt.Errorf("%w: %w", ErrLinkFailed, err))
		return err
	}
	return nil
}

func (r *Receiver) openSink(dst Destination) (*sink, error) {
	s := &sink{dst: dst, h: r.offer.Digest.New()}
	if dst.Sink != nil {
		s.w = dst.Sink
		return s, nil
	}
	if dst.Path != "" {
		s.dir, s.name = filepath.Dir(dst.Path), filepath.Base(dst.Path)
	} else if dst.Dir != "" {
		s.dir, s.name = dst.Dir, r.offer.SafeName()
	} else {
		return nil, errors.New("transfer: accept: no destination directory or path")
	}
	if st, err := os.Stat(s.dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("transfer: accept: destination directory %s does not exist", s.dir)
	}
	s.partial = filepath.Join(s.dir, partialName(r.offer.ID))
	if !claimPartial(s.partial) {
		return nil, fmt.Errorf("transfer: accept: transfer %s is already being received into %s", r.offer.ID, s.dir)
	}
	f, err := os.OpenFile(s.partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		releasePartial(s.partial)
		return nil, fmt.Errorf("transfer: accept: %w", err)
	}
	s.f = f
	fail := func(err error) (*sink, error) {
		f.Close()
		releasePartial(s.partial)
		return nil, fmt.Errorf("transfer: accept: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	s.offset = st.Size()
	if dst.NoResume || s.offset > r.offer.Size {
		if err := f.Truncate(0); err != nil {
			return fail(err)
		}
		s.offset = 0
	}
	if s.offset > 0 {
		// Resume: the final digest covers the whole file, so hash what we have.
		if _, err := io.Copy(s.h, io.NewSectionReader(f, 0, s.offset)); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Seek(s.offset, io.SeekStart); err != nil {
		return fail(err)
	}
	return s, nil
}

// handle processes one event from the reader.
func (r *Receiver) handle(ev rxEvent) {
	switch {
	case ev.err != nil && ev.local:
		r.abort(&CancelError{Code: CancelIO, Reason: "receiver cannot write the file: " + ev.err.Error()}, ev.err)
	case ev.err != nil:
		var pe *ProtocolError
		if errors.As(ev.err, &pe) {
			r.abort(&CancelError{Code: CancelProtocol, Reason: ev.err.Error()}, ev.err)
			return
		}
		if errors.Is(ev.err, io.EOF) {
			ev.err = io.ErrUnexpectedEOF
		}
		if !errors.Is(ev.err, ErrTimeout) {
			ev.err = fmt.Errorf("%w: %w", ErrLinkFailed, ev.err)
		}
		r.tr.set(StateFailed, ev.err)
	case ev.t == frameCancel:
		r.tr.set(StateCanceled, &CancelError{Code: ev.code, Reason: ev.text, Remote: true})
	case ev.t == frameEnd:
		r.finishData(ev)
	}
}

// abort sends CANCEL for ce and ends in state Canceled (when ce is err)
// or Failed with err.
func (r *Receiver) abort(ce *CancelError, err error) {
	r.stopping.Store(true)
	r.linger = true
	r.c.watch(r.cfg.LingerTimeout)
	r.c.writeFrame(frameCancel, appendCancel(nil, ce.Code, ce.Reason))
	if err == error(ce) {
		r.tr.set(StateCanceled, ce)
	} else {
		r.tr.set(StateFailed, err)
	}
}

// finishData checks the size and digest, saves the file and answers ACK.
func (r *Receiver) finishData(ev rxEvent) {
	// No more bytes are due from the sender; syncing a large file may take
	// longer than the idle timeout. The ACK write is bounded by the linger
	// timeout.
	r.c.unwatch()
	r.linger = true
	defer r.c.watch(r.cfg.LingerTimeout)
	s := r.sink.Load()
	if got := s.offset + s.written; got != r.offer.Size {
		err := fmt.Errorf("%w: sender ended after %d of %d bytes", ErrSizeMismatch, got, r.offer.Size)
		r.abort(&CancelError{Code: CancelProtocol, Reason: err.Error()}, err)
		return
	}
	if ev.alg != r.offer.Digest {
		err := protoErrorf("END digest %v, header said %v", ev.alg, r.offer.Digest)
		r.abort(&CancelError{Code: CancelProtocol, Reason: err.Error()}, err)
		return
	}
	if !bytes.Equal(s.h.Sum(nil), ev.sum) {
		r.c.writeFrame(frameAck, appendAck(nil, ackMismatch, "digest mismatch"))
		r.releaseSink(true)
		r.tr.set(StateFailed, ErrDigestMismatch)
		return
	}
	if s.w != nil {
		s.released = true // committed or aborted here
		path, err := s.w.Commit()
		if err != nil {
			s.w.Abort()
			r.failSave(fmt.Errorf("transfer: save: %w", err))
			return
		}
		r.verified(path)
		return
	}
	if err := s.f.Sync(); err != nil {
		r.failSave(fmt.Errorf("transfer: sync %s: %w", s.partial, err))
		return
	}
	r.releaseSink(false)
	path, err := publish(s.partial, s.dir, s.name, s.dst.Overwrite)
	if err != nil {
		r.failSave(err)
		return
	}
	r.verified(path)
}

// verified ends a transfer whose bytes are saved at path: ACK, Finished.
func (r *Receiver) verified(path string) {
	r.tr.mu.Lock()
	r.tr.st.Path = path
	r.tr.mu.Unlock()
	if err := r.c.writeFrame(frameAck, appendAck(nil, ackVerified, "")); err != nil {
		// The file is saved and verified; the sender will not know it.
		r.cfg.Logger.Debug("transfer: ACK not delivered", "id", r.offer.ID, "err", err)
	}
	r.tr.set(StateFinished, nil)
}

func (r *Receiver) failSave(err error) {
	r.c.writeFrame(frameAck, appendAck(nil, ackFailed, err.Error()))
	r.tr.set(StateFailed, err)
}

// releaseSink closes the partial file (removing it if remove is set) and
// lets another attempt claim it.
func (r *Receiver) releaseSink(remove bool) {
	s := r.sink.Load()
	if s == nil || s.released {
		return
	}
	s.released = true
	if s.w != nil { // never committed
		s.w.Abort()
		return
	}
	s.f.Close()
	if remove {
		os.Remove(s.partial)
	}
	releasePartial(s.partial)
}

// readLoop reads frames after the offer. DATA is hashed and written here,
// on the reading goroutine; everything else goes to the controller. After
// END or CANCEL, or a local write error, it keeps reading and discarding
// until the sender closes, so the sender never blocks on a full window.
func (r *Receiver) readLoop() {
	defer close(r.readerDone)
	send := func(ev rxEvent) {
		select {
		case r.events <- ev:
		case <-r.quit:
		}
	}
	var buf []byte
	draining := false
	for {
		t, p, err := r.c.readFrame(&buf)
		if err != nil {
			if !draining {
				send(rxEvent{err: err})
			}
			return
		}
		if draining || r.stopping.Load() {
			draining = true
			continue
		}
		switch t {
		case frameData:
			s := r.sink.Load()
			switch {
			case s == nil:
				send(rxEvent{err: protoErrorf("DATA before GO")})
				return
			case len(p) == 0:
				send(rxEvent{err: protoErrorf("empty DATA frame")})
				return
			case s.offset+s.written+int64(len(p)) > r.offer.Size:
				send(rxEvent{err: protoErrorf("%v: more data than the %d bytes announced", ErrSizeMismatch, r.offer.Size)})
				return
			}
			s.h.Write(p)
			n, err := s.write(p)
			s.written += int64(n)
			if err != nil {
				send(rxEvent{err: err, local: true})
				draining = true
				continue
			}
			r.tr.add(int64(n))
		case frameEnd:
			ev := rxEvent{t: t}
			ev.alg, ev.sum, ev.err = parseEnd(p)
			if ev.err == nil && r.sink.Load() == nil {
				ev.err = protoErrorf("END before GO")
			}
			send(ev)
			draining = true
		case frameCancel:
			ev := rxEvent{t: t}
			ev.code, ev.text, ev.err = parseCancel(p)
			send(ev)
			draining = true
		default:
			send(rxEvent{err: protoErrorf("sender sent %v", t)})
			return
		}
	}
}
