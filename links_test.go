package peerdrop

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/multidevice"
)

func reused(t *testing.T, out *OutgoingTransfer) bool {
	t.Helper()
	d := out.Devices()
	if len(d) != 1 || d[0].State != multidevice.Finished {
		t.Fatalf("devices %+v", d)
	}
	return d[0].Reused
}

// TestLinkReuse: files to the same device share one link, one after the
// other, at once, and in the other direction; only the first signals.
func TestLinkReuse(t *testing.T) {
	t.Parallel()
	accept := func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) }
	tn := newMemNet()
	alice := tn.node(t, "alice", accept)
	bob := tn.node(t, "bob", accept)
	befriend(t, []*testNode{alice}, []*testNode{bob})
	converge(t, []*testNode{alice}, []*testNode{bob})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	for i, want := range []bool{false, true, true} {
		src, data := file(t, dir, "f"+string(rune('a'+i)), 1<<20)
		out := sendAndWait(t, ctx, alice, bob, src)
		if got := reused(t, out); got != want {
			t.Fatalf("file %d: reused %v", i, got)
		}
		waitFor(t, 5*time.Second, func() bool { h := bob.History(); return len(h) == i+1 && h[0].State == multidevice.Finished })
		sameFile(t, bob.History()[0].Path, data)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, _ := file(t, dir, "g"+string(rune('a'+i)), 4<<20)
			out, err := alice.SendFile(ctx, bob.Account(), src)
			if err != nil {
				t.Error(err)
				return
			}
			if err := out.Wait(ctx); err != nil || !out.Devices()[0].Reused {
				t.Errorf("at once: %v, %+v", err, out.Devices())
			}
		}()
	}
	wg.Wait()
	// A file larger than maxStreamed gets a link of its own.
	big, bigData := file(t, dir, "big", maxStreamed+1)
	if out := sendAndWait(t, ctx, alice, bob, big); reused(t, out) {
		t.Fatal("a large file was sent in a stream")
	}
	waitFor(t, 5*time.Second, func() bool { h := bob.History(); return len(h) == 6 && h[0].State == multidevice.Finished })
	sameFile(t, bob.History()[0].Path, bigData)
	// Bob answers with a file on the same link.
	src, data := file(t, dir, "reply", 1000)
	if out := sendAndWait(t, ctx, bob, alice, src); !reused(t, out) {
		t.Fatal("the reply did not reuse the link")
	}
	waitFor(t, 5*time.Second, func() bool { h := alice.History(); return len(h) == 7 && h[0].State == multidevice.Finished })
	sameFile(t, alice.History()[0].Path, data)
	if a, b := alice.Stats().Signaling.RequestsReceived, bob.Stats().Signaling.RequestsReceived; a != 0 || b != 2 {
		t.Fatalf("requests received: alice %d, bob %d (want 0 and 2: the first file's and the large one's)", a, b)
	}
}

// TestLinkIdle: a link with no transfer closes after LinkIdle; the next
// file makes a new one. With LinkIdle negative no link is kept.
func TestLinkIdle(t *testing.T) {
	t.Parallel()
	for _, idle := range []time.Duration{300 * time.Millisecond, -1} {
		mod := func(c *Config) { c.AutoAccept, c.LinkIdle = AcceptUpTo(1<<30), idle }
		tn := newMemNet()
		alice := tn.node(t, "alice", mod)
		bob := tn.node(t, "bob", func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
		befriend(t, []*testNode{alice}, []*testNode{bob})
		converge(t, []*testNode{alice}, []*testNode{bob})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		src, _ := file(t, t.TempDir(), "f", 1000)
		sendAndWait(t, ctx, alice, bob, src)
		if idle > 0 {
			if alice.pooled(bob.Device()) == nil {
				t.Fatal("no link kept")
			}
			waitFor(t, 5*time.Second, func() bool { return alice.pooled(bob.Device()) == nil && bob.pooled(alice.Device()) == nil })
		} else if alice.pooled(bob.Device()) != nil || bob.pooled(alice.Device()) != nil {
			t.Fatal("a link was kept with LinkIdle negative")
		}
		if out := sendAndWait(t, ctx, alice, bob, src); reused(t, out) {
			t.Fatalf("idle %v: reused", idle)
		}
		cancel()
	}
}

// TestLinkStreamFlood: a contact's device opens many streams on a kept
// link, with garbage or nothing in them. Each is closed (garbage at once,
// those beyond MaxIncoming at once, silent ones at the offer timeout),
// and the link still carries a real file afterwards.
func TestLinkStreamFlood(t *testing.T) {
	t.Parallel()
	tn := newMemNet()
	alice := tn.node(t, "alice", nil)
	bob := tn.node(t, "bob", func(c *Config) {
		c.AutoAccept, c.MaxIncoming = AcceptUpTo(1<<30), 4
		c.ConnectTimeout = 2 * time.Second // bounds the wait for an offer
	})
	befriend(t, []*testNode{alice}, []*testNode{bob})
	converge(t, []*testNode{alice}, []*testNode{bob})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "f", 1000)
	sendAndWait(t, ctx, alice, bob, src)
	m := alice.pooled(bob.Device())
	if m == nil {
		t.Fatal("no kept link")
	}
	var streams []io.ReadWriteCloser
	for i := range 40 {
		st, err := m.open()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			st.Write([]byte("PDXF\x01\xff garbage, not a frame"))
		}
		streams = append(streams, st)
	}
	closed := 0
	for _, st := range streams {
		st.(interface{ SetReadDeadline(time.Time) error }).SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, st); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
		st.Close()
	}
	if closed != len(streams) {
		t.Fatalf("%d of %d streams closed by bob", closed, len(streams))
	}
	if got := len(bob.History()); got != 1 {
		t.Fatalf("bob recorded %d transfers", got)
	}
	// Bob frees a stream's MaxIncoming slot just after closing it: a send
	// before then would be refused as busy, and the link retired.
	waitFor(t, 5*time.Second, func() bool { return len(bob.incoming) == 0 })
	out := sendAndWait(t, ctx, alice, bob, src)
	if !reused(t, out) {
		t.Fatal("the link did not survive the flood")
	}
	waitFor(t, 5*time.Second, func() bool { h := bob.History(); return len(h) == 2 && h[0].State == multidevice.Finished })
	sameFile(t, bob.History()[0].Path, data)
}
