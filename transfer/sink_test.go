package transfer

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

// memSink is a Sink in memory that counts its ends.
type memSink struct {
	mu              sync.Mutex
	buf             bytes.Buffer
	commits, aborts int
	failWrite       bool  // fail the first Write
	failCommit      error // returned by Commit
}

func (m *memSink) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrite {
		return 0, errors.New("disk full")
	}
	return m.buf.Write(p)
}

func (m *memSink) Commit() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commits++
	return "committed", m.failCommit
}

func (m *memSink) Abort() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.aborts++
}

func (m *memSink) ends() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commits, m.aborts
}

func acceptSink(m *memSink) func(*Receiver) (string, error) {
	return func(r *Receiver) (string, error) {
		return r.Accept(context.Background(), Destination{Sink: m})
	}
}

// TestSink: the bytes go to a Sink, committed once after the digest is
// verified and before the sender hears ACK; a failed write and a failed
// commit end in Abort, and the sender is told.
func TestSink(t *testing.T) {
	for _, size := range []int{0, 1, 700 << 10} {
		src, data := writeRandom(t, t.TempDir(), "pack", size)
		m := &memSink{}
		o := run(t, tcpPair, Source{Path: src}, fastCfg(), fastCfg(), acceptSink(m))
		if o.sendErr != nil || o.recvErr != nil {
			t.Fatalf("%d bytes: send %v, recv %v", size, o.sendErr, o.recvErr)
		}
		if c, a := m.ends(); c != 1 || a != 0 || !bytes.Equal(m.buf.Bytes(), data) || o.path != "committed" {
			t.Fatalf("%d bytes: %d commits, %d aborts, %d bytes, path %q", size, c, a, m.buf.Len(), o.path)
		}
	}
	src, _ := writeRandom(t, t.TempDir(), "pack", 300<<10)
	m := &memSink{failCommit: errors.New("no space left")}
	o := run(t, tcpPair, Source{Path: src}, fastCfg(), fastCfg(), acceptSink(m))
	if o.sendErr == nil || o.recvErr == nil {
		t.Fatalf("a failed commit: send %v, recv %v", o.sendErr, o.recvErr)
	}
	if c, a := m.ends(); c != 1 || a != 1 {
		t.Fatalf("a failed commit: %d commits, %d aborts", c, a)
	}
	m = &memSink{failWrite: true}
	o = run(t, tcpPair, Source{Path: src}, fastCfg(), fastCfg(), acceptSink(m))
	var ce *CancelError
	if !errors.As(o.sendErr, &ce) || ce.Code != CancelIO || o.recvErr == nil {
		t.Fatalf("a failed write: send %v, recv %v", o.sendErr, o.recvErr)
	}
	if c, a := m.ends(); c != 0 || a != 1 {
		t.Fatalf("a failed write: %d commits, %d aborts", c, a)
	}
}
