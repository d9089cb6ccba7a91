package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Source describes a file to send.
type Source struct {
	// Path is the file to read. Required unless Open is set.
	Path string
	// Open, if set, opens the file instead of Path: a file the application
	// reads itself (an Android content URI, an iOS security-scoped URL, a
	// document in memory). Size is then required, and so is Name unless
	// Path names the file. The Sender closes what Open returns.
	Open func() (File, error)
	// Size is the size of what Open returns; ignored without Open (the
	// file's size is then taken when it is opened).
	Size int64
	// Name is the name offered to the receiver. Empty means the base name of Path.
	Name string
	// MediaType is announced to the receiver. Empty means a guess from the extension.
	MediaType string
	// ID is the transfer ID. Zero means a new random ID; a re-sent file
	// keeps its ID so the receiver can resume.
	ID ID
	// Metadata is announced to the receiver (bounded; see MaxMetadataEntries).
	Metadata map[string]string
}

// File is what a Sender reads. ReadAt must be safe for concurrent use (a
// resumed transfer hashes the file from its start while sending its end),
// as *os.File's is.
type File interface {
	io.ReaderAt
	io.Closer
}

// Sender runs the sending side of one transfer over one stream.
type Sender struct {
	cfg   *Config
	c     *conn
	f     File
	path  string // Path, or Name for an opened Source: for errors
	offer Offer
	tr    tracker

	cancelOnce sync.Once
	cancelCh   chan struct{}
	cancelWhy  *CancelError
	runOnce    sync.Once
	done       chan struct{}
}

// ctrlMsg is a frame (or error) from the receiver, decoded by readLoop.
type ctrlMsg struct {
	t      frameType
	offset int64
	code   CancelCode
	text   string
	ack    ackStatus
	err    error
}

// NewSender opens src and prepares to offer it over rw, which the Sender
// owns from now on (it is closed when the transfer ends, or now on error).
func NewSender(rw io.ReadWriteCloser, src Source, cfg *Config) (*Sender, error) {
	cfg = cfg.withDefaults()
	f, size, err := openSource(src)
	if err != nil {
		rw.Close()
		return nil, err
	}
	name := src.Name
	if name == "" {
		name = filepath.Base(src.Path)
	}
	mt := src.MediaType
	if mt == "" {
		mt = mediaTypeFor(name)
	}
	id := src.ID
	if id.IsZero() {
		id = NewID()
	}
	path := src.Path
	if path == "" {
		path = name
	}
	s := &Sender{
		cfg: cfg, c: newConn(rw), f: f, path: path,
		offer:    Offer{ID: id, Name: name, MediaType: mt, Digest: cfg.Digest, Metadata: src.Metadata},
		cancelCh: make(chan struct{}), done: make(chan struct{}),
	}
	s.offer.Size = size
	if err := s.offer.validate(); err != nil {
		f.Close()
		rw.Close()
		return nil, err
	}
	s.tr = tracker{cfg: cfg, outgoing: true, st: Status{ID: id, Total: s.offer.Size}}
	return s, nil
}

// openSource opens src's file and returns it with its size.
func openSource(src Source) (File, int64, error) {
	if src.Open != nil {
		if src.Size < 0 {
			return nil, 0, fmt.Errorf("transfer: source %q: negative size", src.Name)
		}
		if src.Name == "" && src.Path == "" {
			return nil, 0, errors.New("transfer: a source with Open needs a Name")
		}
		f, err := src.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("transfer: open %s: %w", cmp.Or(src.Name, src.Path), err)
		}
		return f, src.Size, nil
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, 0, fmt.Errorf("transfer: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("transfer: %s is not a regular file", src.Path)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Offer returns what the sender announces.
func (s *Sender) Offer() Offer { return s.offer }

// Status returns a snapshot of the transfer.
func (s *Sender) Status() Status { return s.tr.status() }

// Done is closed when Run has returned.
func (s *Sender) Done() <-chan struct{} { return s.done }

// Cancel stops the transfer at any phase, telling the receiver why. It
// does not wait; Run returns a *CancelError soon after.
func (s *Sender) Cancel(reason string) { s.cancel(CancelByUser, reason) }

func (s *Sender) cancel(code CancelCode, reason string) {
	s.cancelOnce.Do(func() {
		s.cancelWhy = &CancelError{Code: code, Reason: reason}
		close(s.cancelCh)
	})
}

// Run offers the file, waits for the receiver's decision, sends the data
// from the offset the receiver asked for, sends the digest and waits for
// the receiver's verdict. It returns nil only when the receiver verified
// the whole file. Cancelling ctx cancels the transfer with
// context.Cause(ctx) as the reason. Run may be called once.
func (s *Sender) Run(ctx context.Context) error {
	err := ErrClosed
	s.runOnce.Do(func() {
		defer close(s.done)
		defer s.f.Close()
		err = s.run(ctx)
		s.finish(err)
	})
	return err
}

func (s *Sender) finish(err error) {
	var ce *CancelError
	var re *RefusedError
	switch {
	case err == nil:
		s.tr.set(StateFinished, nil)
	case errors.As(err, &re):
		s.tr.set(StateRefused, err)
	case errors.As(err, &ce):
		s.tr.set(StateCanceled, err)
	default:
		s.tr.set(StateFailed, err)
	}
	s.cfg.Logger.Debug("transfer: send ended", "id", s.offer.ID, "err", err)
}

func (s *Sender) run(ctx context.Context) error {
	stopCtx := context.AfterFunc(ctx, func() { s.cancel(CancelByUser, context.Cause(ctx).Error()) })
	defer stopCtx()

	ctrl := make(chan ctrlMsg, 4)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	defer func() {
		close(quit)
		s.c.close()
		<-readerDone
	}()

	s.tr.set(StateAwaitingPeer, nil)
	select {
	case <-s.cancelCh:
		close(readerDone)
		return s.abort(nil, s.cancelWhy)
	default:
	}
	s.c.watch(s.cfg.IdleTimeout)
	if err := s.c.writeFrame(frameHeader, appendHeader(nil, &s.offer)); err != nil {
		close(readerDone)
		if !errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w: %w", ErrLinkFailed, err)
		}
		return fmt.Errorf("transfer: send header: %w", err)
	}
	s.c.unwatch()
	go s.readLoop(ctrl, quit, readerDone)

	offset, err := s.awaitDecision(ctrl, readerDone)
	if err != nil {
		return err
	}

	// Data.
	s.c.watch(s.cfg.IdleTimeout)
	s.tr.mu.Lock()
	s.tr.st.Offset, s.tr.st.Bytes = offset, offset
	s.tr.mu.Unlock()
	s.tr.set(StateOngoing, nil)
	sum, err := s.sendData(ctrl, readerDone, offset)
	if err != nil {
		return err
	}
	if err := s.c.writeFrame(frameEnd, appendEnd(nil, s.offer.Digest, sum)); err != nil {
		return s.linkErr(ctrl, err)
	}

	// Verdict. The receiver may spend a while syncing a large file to disk.
	s.c.unwatch()
	return s.awaitVerdict(ctrl, readerDone)
}

// awaitDecision waits for the receiver's GO (its resume offset), refusal
// or CANCEL, at most DecisionTimeout.
func (s *Sender) awaitDecision(ctrl <-chan ctrlMsg, readerDone chan struct{}) (int64, error) {
	decision := time.NewTimer(s.cfg.DecisionTimeout)
	defer decision.Stop()
	var offset int64
	select {
	case m := <-ctrl:
		switch {
		case m.err != nil:
			return 0, s.abortProto(readerDone, m.err, "waiting for GO")
		case m.t == frameGo:
			offset = m.offset
		case m.t == frameRefuse:
			return 0, &RefusedError{Reason: m.text}
		case m.t == frameCancel:
			return 0, &CancelError{Code: m.code, Reason: m.text, Remote: true}
		default:
			return 0, s.abortProto(readerDone, protoErrorf("unexpected %v before GO", m.t), "")
		}
	case <-decision.C:
		return 0, s.abort(readerDone, &CancelError{Code: CancelTimeout, Reason: fmt.Sprintf("no answer within %v", s.cfg.DecisionTimeout)})
	case <-s.cancelCh:
		return 0, s.abort(readerDone, s.cancelWhy)
	}
	if offset > s.offer.Size {
		return 0, s.abortProto(readerDone, protoErrorf("GO offset %d beyond size %d", offset, s.offer.Size), "")
	}
	return offset, nil
}

// awaitVerdict waits for the receiver's ACK after END: verified, digest
// mismatch or a failure to save.
func (s *Sender) awaitVerdict(ctrl <-chan ctrlMsg, readerDone chan struct{}) error {
	verdict := time.NewTimer(max(s.cfg.IdleTimeout, 2*time.Minute))
	defer verdict.Stop()
	select {
	case <-verdict.C:
		return ErrTimeout
	case m := <-ctrl:
		switch {
		case m.err != nil:
			return s.abortProto(readerDone, m.err, "waiting for ACK")
		case m.t == frameAck && m.ack == ackVerified:
			return nil
		case m.t == frameAck && m.ack == ackMismatch:
			return ErrDigestMismatch
		case m.t == frameAck:
			return fmt.Errorf("transfer: receiver failed to save the file: %s", m.text)
		case m.t == frameCancel:
			return &CancelError{Code: m.code, Reason: m.text, Remote: true}
		default:
			return s.abortProto(readerDone, protoErrorf("unexpected %v after END", m.t), "")
		}
	case <-s.cancelCh:
		return s.abort(readerDone, s.cancelWhy)
	}
}

// sendData streams the file from offset and returns the digest of the
// whole file. From offset 0 the digest is computed on the bytes as they
// are sent; when resuming, a second reader hashes the file from its start
// concurrently, so the first byte still leaves at once.
func (s *Sender) sendData(ctrl <-chan ctrlMsg, readerDone <-chan struct{}, offset int64) ([]byte, error) {
	var h hash.Hash
	var full chan hashResult
	hashStop := make(chan struct{})
	hashed := false
	defer func() {
		close(hashStop)
		if full != nil && !hashed {
			<-full // the hashing goroutine has stopped
		}
	}()
	if offset == 0 {
		h = s.offer.Digest.New()
	} else {
		full = make(chan hashResult, 1)
		go hashFile(io.NewSectionReader(s.f, 0, s.offer.Size), s.path, s.offer.Digest, hashStop, full)
	}
	r := io.NewSectionReader(s.f, offset, s.offer.Size-offset)
	buf := make([]byte, frameHeaderSize+s.cfg.ChunkSize)
	for remaining := s.offer.Size - offset; remaining > 0; {
		select {
		case m := <-ctrl:
			return nil, s.unexpectedDuringData(readerDone, m)
		case <-s.cancelCh:
			return nil, s.abort(readerDone, s.cancelWhy)
		default:
		}
		n := int(min(int64(s.cfg.ChunkSize), remaining))
		p := buf[frameHeaderSize : frameHeaderSize+n]
		if _, err := io.ReadFull(r, p); err != nil {
			ce := &CancelError{Code: CancelIO, Reason: "sender could not read the file: " + err.Error()}
			s.abort(readerDone, ce)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %s shrank while being sent", ErrSizeMismatch, s.path)
			}
			return nil, fmt.Errorf("transfer: read %s: %w", s.path, err)
		}
		if h != nil {
			h.Write(p)
		}
		if err := s.c.writeData(buf[:frameHeaderSize+n]); err != nil {
			return nil, s.linkErr(ctrl, err)
		}
		remaining -= int64(n)
		s.tr.add(int64(n))
	}
	if h != nil {
		return h.Sum(nil), nil
	}
	select {
	case r := <-full:
		hashed = true
		if r.err != nil {
			ce := &CancelError{Code: CancelIO, Reason: "sender could not hash the file: " + r.err.Error()}
			s.abort(readerDone, ce)
			return nil, r.err
		}
		return r.sum, nil
	case m := <-ctrl:
		return nil, s.unexpectedDuringData(readerDone, m)
	case <-s.cancelCh:
		return nil, s.abort(readerDone, s.cancelWhy)
	}
}

func (s *Sender) unexpectedDuringData(readerDone <-chan struct{}, m ctrlMsg) error {
	switch {
	case m.err != nil:
		return s.abortProto(readerDone, m.err, "during data")
	case m.t == frameCancel:
		return &CancelError{Code: m.code, Reason: m.text, Remote: true}
	}
	return s.abortProto(readerDone, protoErrorf("unexpected %v during data", m.t), "")
}

// linkErr explains a failed write: usually the receiver canceled and
// closed, and its CANCEL is waiting in ctrl.
func (s *Sender) linkErr(ctrl <-chan ctrlMsg, err error) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case m := <-ctrl:
		if m.t == frameCancel && m.err == nil {
			return &CancelError{Code: m.code, Reason: m.text, Remote: true}
		}
	case <-t.C:
	}
	if errors.Is(err, ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLinkFailed, err)
}

// abort tells the receiver why we stop, waits briefly for it to close,
// and returns ce.
func (s *Sender) abort(readerDone <-chan struct{}, ce *CancelError) error {
	s.c.watch(s.cfg.LingerTimeout)
	s.c.writeFrame(frameCancel, appendCancel(nil, ce.Code, ce.Reason))
	if readerDone != nil {
		s.c.lingerClose(readerDone, s.cfg.LingerTimeout)
	}
	return ce
}

// abortProto handles a broken receiver: stream errors are returned as
// they are; protocol violations are answered with CANCEL.
func (s *Sender) abortProto(readerDone <-chan struct{}, err error, when string) error {
	var pe *ProtocolError
	var ve *VersionError
	if errors.As(err, &pe) || errors.As(err, &ve) {
		s.abort(readerDone, &CancelError{Code: CancelProtocol, Reason: err.Error()})
		return err
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if when != "" {
		return fmt.Errorf("%w %s: %w", ErrLinkFailed, when, err)
	}
	return err
}

// readLoop decodes the receiver's frames into ctrl until the stream ends.
// A CANCEL closes the stream at once, so a Write blocked on a receiver
// that no longer reads returns.
func (s *Sender) readLoop(ctrl chan<- ctrlMsg, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	send := func(m ctrlMsg) bool {
		select {
		case ctrl <- m:
			return true
		case <-quit:
			return false
		}
	}
	if err := readHello(s.c.br); err != nil {
		send(ctrlMsg{err: s.c.ioErr(err)})
		return
	}
	var buf []byte
	for {
		t, p, err := s.c.readFrame(&buf)
		if err != nil {
			send(ctrlMsg{err: err})
			return
		}
		m := ctrlMsg{t: t}
		switch t {
		case frameGo:
			m.offset, m.err = parseGo(p)
		case frameRefuse:
			m.text, m.err = parseRefuse(p)
		case frameCancel:
			m.code, m.text, m.err = parseCancel(p)
		case frameAck:
			m.ack, m.text, m.err = parseAck(p)
		default:
			m.err = protoErrorf("receiver sent %v", t)
		}
		if !send(m) {
			return
		}
		if m.err != nil {
			return
		}
		if t == frameCancel {
			s.c.close()
			return
		}
	}
}

type hashResult struct {
	sum []byte
	err error
}

// hashFile hashes r (the file named path, for errors), stopping early if
// stop is closed.
func hashFile(r *io.SectionReader, path string, alg DigestAlgorithm, stop <-chan struct{}, out chan<- hashResult) {
	h := alg.New()
	buf := make([]byte, 256<<10)
	for remaining := r.Size(); remaining > 0; {
		select {
		case <-stop:
			out <- hashResult{err: ErrClosed}
			return
		default:
		}
		n := int(min(int64(len(buf)), remaining))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			out <- hashResult{err: fmt.Errorf("%w: %s shrank while being sent", ErrSizeMismatch, path)}
			return
		}
		h.Write(buf[:n])
		remaining -= int64(n)
	}
	out <- hashResult{sum: h.Sum(nil)}
}
