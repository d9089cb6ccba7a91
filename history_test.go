package peerdrop

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// offerWithID offers src to n as transfer id from the given peer, over an
// in-memory stream, and returns the sender's result.
func offerWithID(t *testing.T, n *testNode, from signaling.Peer, id transfer.ID, src string) error {
	t.Helper()
	a, b := net.Pipe()
	go func() { _, _ = n.receive(b, from, false) }()
	s, err := transfer.NewSender(a, transfer.Source{Path: src, ID: id}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Run(ctx)
}

// TestOfferOfKnownID: an offer whose transfer ID names a transfer already
// received, or another account's transfer, is refused, and the history's
// record of it stays as it was.
func TestOfferOfKnownID(t *testing.T) {
	_, alice, bobs := aliceAndBob(t, 1, nil, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "first.bin", 4096)
	out := sendAndWait(t, ctx, alice, bob, src)
	before, _ := bob.records.get(out.ID(), Incoming)
	if before.State != multidevice.Finished {
		t.Fatalf("first transfer: %+v", before)
	}

	other, _ := file(t, t.TempDir(), "second.bin", 100)
	fromAlice := signaling.Peer{Account: alice.Account(), Device: alice.Device()}
	var re *transfer.RefusedError
	if err := offerWithID(t, bob, fromAlice, out.ID(), other); !errors.As(err, &re) || re.Reason != "this transfer was already received" {
		t.Fatalf("the same ID again: %v", err)
	}
	carol := newMemNet().node(t, "carol", nil) // an account of its own; its offer is made by hand
	fromCarol := signaling.Peer{Account: carol.Account(), Device: carol.Device()}
	if err := offerWithID(t, bob, fromCarol, out.ID(), other); !errors.As(err, &re) || re.Reason != "this transfer ID belongs to another transfer" {
		t.Fatalf("another account with the ID: %v", err)
	}
	after, _ := bob.records.get(out.ID(), Incoming)
	if after.State != before.State || after.Path != before.Path || after.Name != "first.bin" || after.Peer != alice.Account() {
		t.Fatalf("the record changed: %+v, was %+v", after, before)
	}
	sameFile(t, before.Path, data)
}

// TestPartialsExpire: the partial file of an incoming transfer that was
// canceled is kept for a resume, and removed once it is older than
// KeepPartials; the record says so.
func TestPartialsExpire(t *testing.T) {
	_, alice, bobs := aliceAndBob(t, 1, nil, nil)
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "big.bin", 16<<20)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	in := nextOffer(t, bob, 10*time.Second)
	if err := in.Accept(transfer.Destination{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return in.Status().Bytes > 0 })
	in.Cancel("later")
	_ = out.Wait(ctx)
	if _, err := in.Wait(ctx); err == nil {
		t.Fatal("a canceled transfer finished")
	}
	rec, _ := bob.records.get(out.ID(), Incoming)
	partial := transfer.PartialPath(rec.Dir, out.ID())
	if _, err := os.Stat(partial); err != nil {
		t.Fatalf("no partial kept for a resume: %v", err)
	}
	running := func(transfer.ID) bool { return false }
	if n, err := bob.records.expirePartials(time.Now().Add(-time.Hour), running); n != 0 || err != nil {
		t.Fatalf("a fresh partial expired: %d %v", n, err)
	}
	if n, err := bob.records.expirePartials(time.Now().Add(time.Minute), running); n != 1 || err != nil {
		t.Fatalf("expire: %d %v", n, err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial is still there: %v", err)
	}
	if rec, _ := bob.records.get(out.ID(), Incoming); !rec.PartialRemoved {
		t.Fatalf("the record does not say the partial was removed: %+v", rec)
	}
}
