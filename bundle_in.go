package peerdrop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/fsutil"
	"github.com/peerdrop/peerdrop/manifest"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// Receiving many files in one offer (see bundle.go). Once the manifest
// is received and verified, it is decoded and planned (package manifest:
// hostile paths are refused or renamed), its top-level folders are made
// under the download directory, and the layout is kept in the home's
// inbox, so that the offer tried again resumes into the same folders.
// The files then arrive in streams of the link (receiveMember): each must
// be one the plan expects, from the same account, of the announced size;
// it is written where the plan says, verified and published as any file.

// errMember: the stream carried a file of a bundle, handled by
// receiveMember rather than offered.
var errMember = errors.New("a file of many in one offer")

// inBundle is a bundle being received.
type inBundle struct {
	id    transfer.ID
	peer  identity.AccountID
	m     *manifest.Manifest
	paths []string // where each entry goes
	files int      // entries that are files
	total int64    // their bytes

	// fresh: placed by this attempt, so a file not received in it is
	// not at its place (no need to look).
	fresh bool

	mu     sync.Mutex
	got    []bool
	have   int   // files received (or found received)
	bytes  int64 // their bytes
	active int   // files being received
	last   time.Time
	first  error // the first file that failed
	done   chan struct{}
}

// manifestPath is where a bundle's manifest is received.
func (n *Node) manifestPath(id transfer.ID) string {
	return filepath.Join(n.cfg.Home, inboxDir, id.String()+".manifest")
}

// layoutPath is where the paths a bundle's entries go to are kept, for a
// later attempt to use the same.
func (n *Node) layoutPath(id transfer.ID) string {
	return filepath.Join(n.cfg.Home, inboxDir, id.String()+".layout")
}

// entryMode is the mode a received file gets: executable by its owner if
// it was so.
func entryMode(e manifest.Entry) os.FileMode {
	if e.Exec {
		return 0o700
	}
	return 0o600
}

// openBundle decodes a received manifest and places it under dir (or
// where an earlier attempt placed it), and makes it the bundle that
// streams of its files are matched against.
func (n *Node) openBundle(t *IncomingTransfer, dir string) (*inBundle, error) {
	id := t.offer.Transfer
	f, err := os.Open(n.manifestPath(id))
	if err != nil {
		return nil, err
	}
	m, err := manifest.Decode(f, t.r.Offer().Size)
	f.Close()
	if err != nil {
		return nil, err
	}
	s := m.Summary()
	if s.Files != t.offer.Files || s.Bytes != t.offer.Size {
		return nil, fmt.Errorf("%w: the manifest holds %d files, %d bytes; the offer said %d, %d", manifest.ErrFormat, s.Files, s.Bytes, t.offer.Files, t.offer.Size)
	}
	plan, err := manifest.Plan(m)
	if err != nil {
		return nil, err
	}
	if err := fsutil.EnoughSpace(dir, s.Bytes); err != nil {
		return nil, err
	}
	layout := n.layoutPath(id)
	var paths []string
	fresh := false
	if b, err := os.ReadFile(layout); err == nil && json.Unmarshal(b, &paths) == nil && len(paths) == len(m.Entries) && placedUnder(paths, dir) {
		for i, e := range m.Entries { // folders an earlier attempt made may be gone
			p := filepath.Dir(paths[i])
			if e.Dir {
				p = paths[i]
			}
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, err
			}
		}
	} else {
		if paths, err = plan.Place(dir, m.Entries); err != nil {
			return nil, err
		}
		fresh = true
		b, _ := json.Marshal(paths)
		if err := fsutil.WriteFileAtomic(layout, b); err != nil {
			return nil, err
		}
	}
	b := &inBundle{id: id, peer: t.offer.From, m: m, paths: paths, files: s.Files, total: s.Bytes, got: make([]bool, len(m.Entries)),
		fresh: fresh, last: time.Now(), done: make(chan struct{})}
	for i, e := range m.Entries {
		if !e.Dir && b.has(i) {
			b.got[i], b.have, b.bytes = true, b.have+1, b.bytes+e.Size
		}
	}
	if b.have == b.files {
		close(b.done)
	}
	n.mu.Lock()
	n.bundles[id] = b
	n.mu.Unlock()
	return b, nil
}

// placedUnder reports whether every path is inside dir.
func placedUnder(paths []string, dir string) bool {
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			return false
		}
	}
	return true
}

// received reports whether entry i is at its place, whole: a file is
// published only once verified, so its presence with the right size says
// so.
func (b *inBundle) received(i int) bool {
	fi, err := os.Lstat(b.paths[i])
	return err == nil && fi.Mode().IsRegular() && fi.Size() == b.m.Entries[i].Size && (b.m.Entries[i].Size > 0 || b.got[i])
}

// has reports whether file i was received, in this attempt or (at its
// place) in an earlier one. b.mu is held.
func (b *inBundle) has(i int) bool {
	return b.got[i] || !b.fresh && b.received(i)
}

// wait waits until every file arrived, or none moved for idle, or the
// node closes; it returns the error of the files missing.
func (n *Node) waitBundle(b *inBundle, t *IncomingTransfer) error {
	idle := 2 * max(n.cfg.Transfer.IdleTimeout, 30*time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer func() {
		n.mu.Lock()
		if n.bundles[b.id] == b {
			delete(n.bundles, b.id)
		}
		n.mu.Unlock()
	}()
	for {
		select {
		case <-b.done:
			return nil
		case <-n.ctx.Done():
			return errors.New("the receiving node stopped; the sender tries again")
		case <-tick.C:
		}
		b.mu.Lock()
		stalled := b.active == 0 && time.Since(b.last) > idle
		have, files, first := b.have, b.files, b.first
		b.mu.Unlock()
		if stalled {
			if first == nil {
				first = fmt.Errorf("no file for %v", idle)
			}
			return fmt.Errorf("%d of %d files received; %w", have, files, first)
		}
	}
}

// receiveMember receives one file, or one pack of small files, of a
// bundle accepted here.
func (n *Node) receiveMember(r *transfer.Receiver, from signaling.Peer) {
	o := r.Offer()
	if _, ok := o.Metadata[metaPack]; ok {
		n.receivePack(r, from)
		return
	}
	bid, err1 := transfer.ParseID(o.Metadata[metaBundle])
	i, err := strconv.Atoi(o.Metadata[metaEntry])
	b := n.bundleOf(bid)
	if err1 != nil || err != nil || b == nil || b.peer != from.Account || i < 0 || i >= len(b.m.Entries) || b.m.Entries[i].Dir ||
		o.ID != memberID(bid, i) || o.Size != b.m.Entries[i].Size {
		n.log.Info("a file of no offer accepted here refused", "from", from.Account.Short(), "bundle", o.Metadata[metaBundle])
		r.Refuse("not a file of an offer accepted here")
		return
	}
	e := b.m.Entries[i]
	b.mu.Lock()
	have := b.has(i)
	if !have {
		b.active++
	}
	b.last = time.Now()
	b.mu.Unlock()
	if have {
		r.Refuse(haveReason)
		b.mark(n, i, nil)
		return
	}
	path, err := r.Accept(n.ctx, transfer.Destination{Path: b.paths[i], Overwrite: true})
	if err == nil {
		os.Chmod(path, entryMode(e))
		os.Chtimes(path, time.Time{}, e.ModTime)
	}
	b.mu.Lock()
	b.active--
	b.mu.Unlock()
	b.mark(n, i, err)
	n.emit(Event{Kind: EventFile, Transfer: bid, Direction: Incoming, Peer: from.Account, Device: from.Device,
		File: e.Path, Path: path, State: fileState(err), Bytes: e.Size, Total: e.Size, Err: err})
}

// bundleOf returns the bundle id being received. Its first files may
// come while its manifest, just verified, is still being planned: while
// the manifest's transfer runs, they wait for it (up to ConnectTimeout).
func (n *Node) bundleOf(id transfer.ID) *inBundle {
	end := time.Now().Add(n.cfg.ConnectTimeout)
	for {
		n.mu.Lock()
		b := n.bundles[id]
		_, coming := n.inflight[id]
		n.mu.Unlock()
		if b != nil || !coming || time.Now().After(end) || n.ctx.Err() != nil {
			return b
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mark records the end of file i.
func (b *inBundle) mark(n *Node, i int, err error) {
	b.mu.Lock()
	b.last = time.Now()
	if err != nil {
		if b.first == nil {
			b.first = fmt.Errorf("%s: %w", b.m.Entries[i].Path, err)
		}
		b.mu.Unlock()
		return
	}
	if b.got[i] {
		b.mu.Unlock()
		return
	}
	b.got[i] = true
	b.have++
	b.bytes += b.m.Entries[i].Size
	bytes, all := b.bytes, b.have == b.files
	b.mu.Unlock()
	n.emit(Event{Kind: EventProgress, Transfer: b.id, Direction: Incoming, Peer: b.peer, State: multidevice.Ongoing, Bytes: bytes,
		Total: b.total})
	if all {
		close(b.done)
	}
}

// safeTops turns a bundle offer's top-level names into names to show:
// each one name (SanitizeName), folders still ending in '/'.
func safeTops(tops []string) []string {
	out := make([]string, 0, len(tops))
	for _, t := range tops {
		name := strings.TrimSuffix(t, "/")
		s := transfer.SanitizeName(name)
		if name != t {
			s += "/"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		out = append(out, "files/")
	}
	return out
}

// trackBundle follows a bundle whose manifest arrived until its files
// have (or stop coming) and returns its status: Path is the first
// top-level folder or file.
func (n *Node) trackBundle(t *IncomingTransfer) transfer.Status {
	rec, _ := n.records.get(t.offer.Transfer, Incoming)
	dir := rec.Dir
	if dir == "" {
		dir = n.cfg.DownloadDir
	}
	b, err := n.openBundle(t, dir)
	if err != nil {
		n.log.Info("offer of many files failed", "transfer", t.offer.Transfer, "err", err)
		return transfer.Status{State: transfer.StateFailed, Err: err}
	}
	t.bundle.Store(b)
	_ = n.records.update(t.offer.Transfer, Incoming, func(rec *Record) { rec.State = multidevice.Ongoing })
	b.mu.Lock()
	st0 := transfer.Status{State: transfer.StateOngoing, Bytes: b.bytes}
	b.mu.Unlock()
	n.emit(t.event(EventState, st0))
	err = n.waitBundle(b, t)
	b.mu.Lock()
	st := transfer.Status{State: transfer.StateFinished, Bytes: b.bytes}
	b.mu.Unlock()
	if err != nil {
		st.State, st.Err = transfer.StateFailed, err
		return st
	}
	rel, _ := filepath.Rel(dir, b.paths[0])
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	st.Path = filepath.Join(dir, top)
	os.Remove(n.manifestPath(b.id))
	os.Remove(n.layoutPath(b.id))
	return st
}

// receivePack receives a pack of small files (see units) straight into
// them, cutting its bytes along the manifest's sizes (packSink): each file
// is written beside its place, and once the pack is verified they are
// renamed into place and made durable (one syncfs) before the sender hears
// that it arrived.
func (n *Node) receivePack(r *transfer.Receiver, from signaling.Peer) {
	o := r.Offer()
	bid, err0 := transfer.ParseID(o.Metadata[metaBundle])
	lo, hi, found := strings.Cut(o.Metadata[metaPack], "-")
	first, err1 := strconv.Atoi(lo)
	last, err2 := strconv.Atoi(hi)
	b := n.bundleOf(bid)
	valid := err0 == nil && found && err1 == nil && err2 == nil && b != nil && b.peer == from.Account && first >= 0 && first < last &&
		last < len(b.m.Entries) && last-first < packMaxFiles && o.ID == packID(bid, first)
	var size int64
	for i := first; valid && i <= last; i++ {
		e := b.m.Entries[i]
		valid = !e.Dir && e.Size <= packSmall
		size += e.Size
	}
	if !valid || size != o.Size {
		n.log.Info("a pack of no offer accepted here refused", "from", from.Account.Short(), "bundle", o.Metadata[metaBundle])
		r.Refuse("not files of an offer accepted here")
		return
	}
	b.mu.Lock()
	skip := make([]bool, last-first+1)
	missing := false
	for i := first; i <= last; i++ {
		skip[i-first] = b.has(i)
		missing = missing || !skip[i-first]
	}
	if missing {
		b.active++
	}
	b.last = time.Now()
	b.mu.Unlock()
	if !missing {
		r.Refuse(haveReason)
		for i := first; i <= last; i++ {
			b.mark(n, i, nil)
		}
		return
	}
	ps := &packSink{b: b, first: first, last: last, skip: skip, next: first}
	_, err := r.Accept(n.ctx, transfer.Destination{Sink: ps})
	b.mu.Lock()
	b.active--
	b.mu.Unlock()
	for i := first; i <= last; i++ {
		b.mark(n, i, err)
		e := b.m.Entries[i]
		n.emit(Event{Kind: EventFile, Transfer: bid, Direction: Incoming, Peer: from.Account, Device: from.Device,
			File: e.Path, Path: b.paths[i], State: fileState(err), Bytes: e.Size, Total: e.Size, Err: err})
	}
}

// packSink cuts a pack's bytes into the files first..last of a bundle
// (a transfer.Sink). Each file is written under a hidden name beside its
// place; Commit renames them into place and syncs the file system, Abort
// removes them. Files received before (skip) are read past.
type packSink struct {
	b           *inBundle
	first, last int
	skip        []bool

	next int      // the entry the next byte belongs to
	f    *os.File // its hidden file, if open
	left int64    // its bytes still to come
}

// tempName is where entry i is written until the pack is verified.
func (p *packSink) tempName(i int) string {
	return filepath.Join(filepath.Dir(p.b.paths[i]), fmt.Sprintf(".peerdrop-%s-%d", p.b.id.String()[:16], i))
}

// open starts entry p.next: a hidden file, or nothing to write for a file
// received before.
func (p *packSink) open() error {
	i := p.next
	e := p.b.m.Entries[i]
	p.left = e.Size
	if p.skip[i-p.first] {
		return nil
	}
	tmp := p.tempName(i)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|fsutil.NoFollow, entryMode(e))
	if err != nil {
		return err
	}
	p.f = f
	return nil
}

// end finishes entry p.next (its bytes all written) and moves on.
func (p *packSink) end() error {
	i := p.next
	p.next++
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	if err == nil {
		err = os.Chtimes(p.tempName(i), time.Time{}, p.b.m.Entries[i].ModTime)
	}
	return err
}

func (p *packSink) Write(data []byte) (int, error) {
	n := 0
	for {
		// Entries with no bytes left (empty files included) end here.
		for p.next <= p.last && p.f == nil && p.left == 0 {
			if err := p.open(); err != nil {
				return n, err
			}
			if p.left > 0 {
				break
			}
			if err := p.end(); err != nil {
				return n, err
			}
		}
		if len(data) == 0 {
			return n, nil
		}
		if p.next > p.last {
			return n, errors.New("more bytes than the pack's files")
		}
		k := int(min(int64(len(data)), p.left))
		if p.f != nil {
			if _, err := p.f.Write(data[:k]); err != nil {
				return n, err
			}
		}
		n += k
		data = data[k:]
		if p.left -= int64(k); p.left == 0 {
			if err := p.end(); err != nil {
				return n, err
			}
		}
	}
}

// Commit renames the verified files into place and makes them durable.
func (p *packSink) Commit() (string, error) {
	if _, err := p.Write(nil); err != nil { // empty files at the end
		return "", err
	}
	if p.next <= p.last {
		return "", errors.New("the pack ended before its files")
	}
	for i := p.first; i <= p.last; i++ {
		if p.skip[i-p.first] {
			continue
		}
		if err := os.Rename(p.tempName(i), p.b.paths[i]); err != nil {
			return "", err
		}
	}
	return "", fsutil.SyncFS(filepath.Dir(p.b.paths[p.first]))
}

// Abort removes the hidden files written: those of the entries up to
// p.next (after a failed Commit, those not renamed yet).
func (p *packSink) Abort() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	for i := p.first; i <= min(p.next, p.last); i++ {
		if !p.skip[i-p.first] {
			os.Remove(p.tempName(i))
		}
	}
}
