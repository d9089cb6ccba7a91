package peerdrop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/fsutil"
	"github.com/peerdrop/peerdrop/manifest"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// Many files in one offer (a bundle). The offer is a transfer of the
// encoded manifest (package manifest), with media type ManifestType and
// metadata saying what a person decides on: the number of files, their
// total size and the top-level names. Once the receiver has accepted it
// and verified the manifest, each file follows in a stream of the same
// link (ALPN peerdrop/2), as a transfer of its own whose ID derives from
// the bundle's and the entry's index (memberID) and whose metadata names
// them; the receiver writes it where its plan of the manifest says, with
// no further question, verifies it and publishes it as it does any file.
// A device tried again gets the manifest offer again: it resumes the
// bundle without asking, refuses the files it has ("have"), and resumes
// the partial one from its offset.

// ManifestType is the media type of a bundle's offer.
const ManifestType = "application/x-peerdrop-manifest"

// Metadata keys of bundle offers and their files.
const (
	metaFiles  = "files"
	metaBytes  = "bytes"
	metaTops   = "tops"
	metaBundle = "bundle"
	metaEntry  = "entry"
	metaPack   = "pack"
	haveReason = "have"
)

// bundleStreams is how many files of a bundle are in flight at once.
const bundleStreams = 4

// outBundle is what a bundle sends.
type outBundle struct {
	m       *manifest.Manifest
	sources []string         // per entry; empty for a folder
	file    string           // the encoded manifest, in the home's outbox
	sum     manifest.Summary // of m, once
}

// newOutBundle is the bundle of m, whose encoding is (to be) at file.
func newOutBundle(m *manifest.Manifest, sources []string, file string) *outBundle {
	return &outBundle{m: m, sources: sources, file: file, sum: m.Summary()}
}

// memberID is the transfer ID of entry i of bundle id.
func memberID(id transfer.ID, i int) transfer.ID {
	h := sha256.New()
	h.Write([]byte("peerdrop bundle member"))
	h.Write(id[:])
	h.Write([]byte(strconv.Itoa(i)))
	var m transfer.ID
	copy(m[:], h.Sum(nil))
	return m
}

// SendFiles offers files and folders (walked without following symbolic
// links) to every device of the contact as one offer: each device accepts
// or refuses it once, then receives every file under a new folder of its
// own. One regular file alone is SendFile. See SendFile for the rest.
func (n *Node) SendFiles(ctx context.Context, contact identity.AccountID, paths []string, opts ...SendOption) (*OutgoingTransfer, error) {
	return n.SendFilesWithID(ctx, transfer.NewID(), contact, paths, opts...)
}

// SendFilesWithID is SendFiles with a transfer ID chosen by the caller
// (see SendFileWithID).
func (n *Node) SendFilesWithID(ctx context.Context, id transfer.ID, contact identity.AccountID, paths []string, opts ...SendOption) (*OutgoingTransfer, error) {
	if len(paths) == 0 {
		return nil, errors.New("peerdrop: nothing to send")
	}
	if len(paths) == 1 { // one file (a URI is one) is SendFile
		if fi, err := os.Stat(paths[0]); IsURI(paths[0]) || err == nil && fi.Mode().IsRegular() {
			return n.SendFileWithID(ctx, id, contact, paths[0], opts...)
		}
	}
	m, sources, skipped, err := manifest.BuildWith(n.statURI, paths...)
	if err != nil {
		return nil, fmt.Errorf("peerdrop: %w", err)
	}
	for _, s := range skipped {
		n.log.Info("not sent", "path", s.Path, "why", s.Why)
	}
	b := newOutBundle(m, sources, filepath.Join(n.cfg.Home, outboxDir, id.String()+".manifest"))
	if err := b.save(); err != nil {
		return nil, err
	}
	o, err := n.send(ctx, id, contact, b.file, opts, b)
	if err != nil {
		b.remove()
	}
	return o, err
}

// save writes the encoded manifest and, beside it, the source paths.
func (b *outBundle) save() error {
	if err := os.MkdirAll(filepath.Dir(b.file), 0o700); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := b.m.Encode(&buf); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(b.file, buf.Bytes()); err != nil {
		return err
	}
	src, err := json.Marshal(b.sources)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(b.file+".sources", src)
}

func (b *outBundle) remove() {
	os.Remove(b.file)
	os.Remove(b.file + ".sources")
}

// loadBundle reads a bundle saved by save (a transfer restored from the
// history).
func loadBundle(file string) (*outBundle, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := manifest.Decode(f, 0)
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(file + ".sources")
	if err != nil {
		return nil, err
	}
	b := newOutBundle(m, nil, file)
	if err := json.Unmarshal(src, &b.sources); err != nil || len(b.sources) != len(m.Entries) {
		return nil, fmt.Errorf("peerdrop: %s.sources does not match its manifest", file)
	}
	return b, nil
}

// offer is the bundle's offer: the manifest, with its summary.
func (b *outBundle) offer(id transfer.ID) transfer.Source {
	s := b.sum
	tops := ""
	for _, t := range s.Tops {
		if len(tops)+len(t)+1 > transfer.MaxMetadataValue {
			break
		}
		if tops != "" {
			tops += "\n"
		}
		tops += t
	}
	return transfer.Source{Path: b.file, Name: displayName(s), MediaType: ManifestType, ID: id,
		Metadata: map[string]string{metaFiles: strconv.Itoa(s.Files), metaBytes: strconv.FormatInt(s.Bytes, 10), metaTops: tops}}
}

// displayName names a bundle in one line: "photos/", or "photos/ and 2 more".
func displayName(s manifest.Summary) string {
	if len(s.Tops) == 1 {
		return s.Tops[0]
	}
	return fmt.Sprintf("%s and %d more", s.Tops[0], len(s.Tops)-1)
}

// deliverBundle sends the manifest in one stream of a kept link, then,
// once accepted, every file in streams of their own, bundleStreams at a
// time.
func (s *subTransfer) deliverBundle(m *muxLink, sel ice.Selected, reused bool) (multidevice.State, int64, error) {
	o := s.o
	o.mu.Lock()
	s.st.Relayed, s.st.Link, s.st.Connect, s.st.Reused = sel.Relayed, sel.Link, sel.Elapsed, reused
	o.mu.Unlock()
	if err := o.sourceUnchanged(); err != nil {
		return multidevice.Failed, 0, err
	}
	st, err := m.open()
	if err != nil {
		return multidevice.Failed, 0, &unreachedError{err}
	}
	state, _, err := s.runSender(st, o.bundle.offer(o.id), false)
	if state != multidevice.Finished {
		return state, 0, err
	}
	s.update(multidevice.Ongoing, 0, 0, false)
	done, fails, first := s.sendUnits(m, units(o.bundle.m))
	if c := context.Cause(s.ctx); c != nil {
		return multidevice.Canceled, done, c
	}
	if first != nil {
		return multidevice.Failed, done, fmt.Errorf("%d of %d files not received; first: %w", fails, o.bundle.sum.Files, first)
	}
	return multidevice.Finished, done, nil
}

// sendUnits sends the units, bundleStreams at a time, and returns the
// bytes of the files received, how many were not, and the first error.
func (s *subTransfer) sendUnits(m *muxLink, all []unit) (int64, int, error) {
	o := s.o
	var (
		mu    sync.Mutex
		done  int64 // bytes of the files finished
		first error
		fails int
	)
	work := make(chan unit)
	var wg sync.WaitGroup
	for range bundleStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				var n int64
				var err error
				if u.pack {
					n, err = s.sendPack(m, u)
				} else {
					n, err = s.sendMember(m, u.first)
				}
				mu.Lock()
				if err != nil {
					fails += u.last - u.first + 1
					if first == nil {
						first = fmt.Errorf("%s: %w", o.bundle.m.Entries[u.first].Path, err)
					}
				} else {
					done += n
				}
				total := done
				mu.Unlock()
				s.update(multidevice.Ongoing, total, 0, true)
			}
		}()
	}
	for _, u := range all {
		select {
		case work <- u:
		case <-s.ctx.Done():
		}
		if s.ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return done, fails, first
}

// Small files travel in packs: consecutive files of at most packSmall
// bytes, packMaxFiles or packMaxBytes together, sent as one transfer of
// their bytes end to end (verified as one) that the receiver cuts along
// the manifest's sizes. Per-file round trips and syncs would otherwise
// cost more than the bytes of small files (10,000 files of 1 KiB: 4,400
// files/s one by one).
const (
	packSmall    = 1 << 20
	packMaxFiles = 1024
	packMaxBytes = 16 << 20
)

// unit is what one stream carries: the file first, or (pack) the files
// first..last.
type unit struct {
	first, last int
	pack        bool
}

// units splits a manifest's files into units, the same way every time
// (a device tried again gets the same packs, which resume).
func units(m *manifest.Manifest) []unit {
	var out []unit
	cur := -1 // the unit small files join
	var bytes int64
	for i, e := range m.Entries {
		if e.Dir {
			continue
		}
		if e.Size > packSmall {
			cur = -1
			out = append(out, unit{first: i, last: i})
			continue
		}
		if cur >= 0 && out[cur].last == i-1 && out[cur].last-out[cur].first+1 < packMaxFiles && bytes+e.Size <= packMaxBytes {
			out[cur].last, out[cur].pack = i, true
			bytes += e.Size
			continue
		}
		out = append(out, unit{first: i, last: i})
		cur, bytes = len(out)-1, e.Size
	}
	return out
}

// packID is the transfer ID of the pack of bundle id that starts at
// entry first.
func packID(id transfer.ID, first int) transfer.ID {
	return memberID(id, -1-first)
}

// sendPack sends the files of u as one transfer of their bytes end to
// end, read from the files as they go (packReader).
func (s *subTransfer) sendPack(m *muxLink, u unit) (int64, error) {
	o := s.o
	pr := newPackReader(o.n, o.bundle, u)
	err := s.sendStream(m, transfer.Source{Name: "pack", ID: packID(o.id, u.first), Size: pr.size,
		Open:     func() (transfer.File, error) { return pr, nil },
		Metadata: map[string]string{metaBundle: o.id.String(), metaPack: fmt.Sprintf("%d-%d", u.first, u.last)}})
	s.fileEvents(u.first, u.last, err)
	if err != nil {
		return 0, err
	}
	return pr.size, nil
}

// packReader reads the files of a pack end to end as one file (a
// transfer.File), each opened when its bytes are first read and checked to
// be the file offered.
type packReader struct {
	n     *Node
	b     *outBundle
	first int
	start []int64 // where each file's bytes start in the pack
	size  int64

	mu  sync.Mutex
	cur int           // the file open, or -1
	f   transfer.File // its reader
}

func newPackReader(n *Node, b *outBundle, u unit) *packReader {
	pr := &packReader{n: n, b: b, first: u.first, cur: -1}
	for i := u.first; i <= u.last; i++ {
		pr.start = append(pr.start, pr.size)
		pr.size += b.m.Entries[i].Size
	}
	return pr
}

func (pr *packReader) ReadAt(p []byte, off int64) (int, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		if pos >= pr.size {
			return done, io.EOF
		}
		k := sort.Search(len(pr.start), func(k int) bool { return pr.start[k] > pos }) - 1
		f, err := pr.open(k)
		if err != nil {
			return done, err
		}
		e := pr.b.m.Entries[pr.first+k]
		want := int(min(int64(len(p)-done), e.Size-(pos-pr.start[k])))
		n, err := f.ReadAt(p[done:done+want], pos-pr.start[k])
		done += n
		if n < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("%s shrank while being sent", pr.b.sources[pr.first+k])
			}
			return done, err
		}
	}
	return done, nil
}

// open makes file k of the pack the open one.
func (pr *packReader) open(k int) (transfer.File, error) {
	if pr.cur == k {
		return pr.f, nil
	}
	pr.close()
	i := pr.first + k
	e := pr.b.m.Entries[i]
	f, err := pr.n.openUnchanged(pr.b.sources[i], e.Size, e.ModTime)
	if err != nil {
		return nil, err
	}
	pr.cur, pr.f = k, f
	return f, nil
}

func (pr *packReader) close() {
	if pr.f != nil {
		pr.f.Close()
		pr.cur, pr.f = -1, nil
	}
}

// Close closes the file open; the pack can still be read (a transfer
// tried again opens it anew).
func (pr *packReader) Close() error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.close()
	return nil
}

// sendStream sends src in a new stream of m; a device that has it
// already (it refuses with "have") counts as having received it.
func (s *subTransfer) sendStream(m *muxLink, src transfer.Source) error {
	st, err := m.open()
	if err != nil {
		return fmt.Errorf("%w: %w", transfer.ErrLinkFailed, err)
	}
	tcfg := s.o.n.cfg.Transfer
	tcfg.OnEvent = nil
	snd, err := transfer.NewSender(st, src, &tcfg)
	if err != nil {
		st.Close()
		return err
	}
	stop := context.AfterFunc(s.ctx, func() { snd.Cancel(ErrCanceledBySender.Error()) })
	defer stop()
	err = snd.Run(s.ctx)
	var re *transfer.RefusedError
	if errors.As(err, &re) && re.Reason == haveReason {
		err = nil
	}
	return err
}

// fileEvents reports how entries first..last ended on the device.
func (s *subTransfer) fileEvents(first, last int, err error) {
	o := s.o
	for i := first; i <= last; i++ {
		e := o.bundle.m.Entries[i]
		o.n.emit(Event{Kind: EventFile, Transfer: o.id, Direction: Outgoing, Peer: o.peer, Device: s.dev, Name: o.name,
			File: e.Path, State: fileState(err), Bytes: e.Size, Total: e.Size, Err: err})
	}
}

// sendMember sends entry i in a stream of its own; a file the device has
// already (it refuses with "have") counts as sent.
func (s *subTransfer) sendMember(m *muxLink, i int) (int64, error) {
	o := s.o
	e := o.bundle.m.Entries[i]
	src := o.bundle.sources[i]
	ts := o.n.offered(src, path.Base(e.Path), e.Size, e.ModTime, memberID(o.id, i))
	ts.Metadata = map[string]string{metaBundle: o.id.String(), metaEntry: strconv.Itoa(i)}
	err := s.sendStream(m, ts)
	s.fileEvents(i, i, err)
	if err != nil {
		return 0, err
	}
	return e.Size, nil
}

func fileState(err error) multidevice.State {
	switch {
	case err == nil:
		return multidevice.Finished
	case isCancel(err):
		return multidevice.Canceled
	}
	return multidevice.Failed
}

// bundleSummary reads a bundle offer's summary from its metadata,
// bounded; ok is false when it is not a bundle offer or is malformed.
func bundleSummary(o transfer.Offer) (files int, bytes int64, tops []string, ok bool) {
	if o.MediaType != ManifestType {
		return 0, 0, nil, false
	}
	files, err1 := strconv.Atoi(o.Metadata[metaFiles])
	bytes, err2 := strconv.ParseInt(o.Metadata[metaBytes], 10, 64)
	if err1 != nil || err2 != nil || files < 0 || files > manifest.MaxEntries || bytes < 0 || bytes > manifest.MaxTotalBytes ||
		o.Size > manifest.MaxEncodedBytes {
		return 0, 0, nil, false
	}
	for _, t := range strings.Split(o.Metadata[metaTops], "\n") {
		if t = strings.TrimSpace(t); t != "" {
			tops = append(tops, t)
		}
	}
	return files, bytes, tops, true
}
