package transfer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// memFile is an application-supplied file (Source.Open): bytes in memory
// that count their reads and closes.
type memFile struct {
	*bytes.Reader
	closed *atomic.Int32
}

func (m memFile) Close() error { m.closed.Add(1); return nil }

// TestSendFromOpen: a Source the application opens itself goes like a
// path, resumes from the receiver's partial (hashing through the same
// opener), and is closed once per Sender.
func TestSendFromOpen(t *testing.T) {
	_, data := writeRandom(t, t.TempDir(), "x", 700<<10)
	var opens, closed atomic.Int32
	src := Source{Name: "from-app.bin", Size: int64(len(data)), ID: NewID(), Open: func() (File, error) {
		opens.Add(1)
		return memFile{bytes.NewReader(data), &closed}, nil
	}}
	dir := t.TempDir()
	// A partial of the first 200 KiB, as a stopped receiver leaves it.
	if err := os.WriteFile(filepath.Join(dir, partialName(src.ID)), data[:200<<10], 0o600); err != nil {
		t.Fatal(err)
	}
	o := run(t, tcpPair, src, fastCfg(), fastCfg(), acceptInto(dir))
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatalf("send %v, recv %v", o.sendErr, o.recvErr)
	}
	if got := o.sender.Status().Offset; got != 200<<10 {
		t.Fatalf("resumed from %d", got)
	}
	mustEqualFile(t, filepath.Join(dir, "from-app.bin"), data)
	if opens.Load() != 1 || closed.Load() != 1 {
		t.Fatalf("opened %d times, closed %d", opens.Load(), closed.Load())
	}
}

// TestSendFromOpenErrors: an opener that fails, a negative size, no name,
// and a source shorter than its Size (the sender stops with
// ErrSizeMismatch and the receiver publishes nothing).
func TestSendFromOpenErrors(t *testing.T) {
	boom := errors.New("permission revoked")
	var closed atomic.Int32
	for _, src := range []Source{
		{Name: "a", Size: 1, Open: func() (File, error) { return nil, boom }},
		{Name: "a", Size: -1, Open: func() (File, error) { return memFile{bytes.NewReader(nil), &closed}, nil }},
		{Size: 1, Open: func() (File, error) { return memFile{bytes.NewReader(nil), &closed}, nil }},
	} {
		a, b := net_pipe(t)
		if _, err := NewSender(a, src, nil); err == nil || (src.Size == 1 && src.Name == "a" && !errors.Is(err, boom)) {
			t.Errorf("source %+v: %v", src, err)
		}
		b.Close()
	}
	dir := t.TempDir()
	short := Source{Name: "short", Size: 1 << 20, Open: func() (File, error) {
		return memFile{bytes.NewReader(make([]byte, 1000)), &closed}, nil
	}}
	o := run(t, net_pipe, short, fastCfg(), fastCfg(), acceptInto(dir))
	if !errors.Is(o.sendErr, ErrSizeMismatch) || o.recvErr == nil {
		t.Fatalf("send %v, recv %v", o.sendErr, o.recvErr)
	}
	if _, err := os.Stat(filepath.Join(dir, "short")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a short source was published: %v", err)
	}
}

// TestHeaderOnClosedLink: a link that is gone before the header is a
// link failure (the device is tried again), not a fault of the file.
func TestHeaderOnClosedLink(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "f", 10)
	a, b := net_pipe(t)
	b.Close()
	s, err := NewSender(a, Source{Path: src}, fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrLinkFailed) {
		t.Fatalf("header on a closed link: %v", err)
	}
}
