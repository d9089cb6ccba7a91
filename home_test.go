package peerdrop

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// TestHomeInUse: a second Node on a running home fails with ErrHomeInUse
// and names the holder; once the first closes, the home opens again.
func TestHomeInUse(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no flock here: the home lock is a no-op")
	}
	tn := newMemNet()
	a := tn.node(t, "alice", nil)
	cfg := tn.config(a.home)
	_, err := Open(&cfg)
	if !errors.Is(err, ErrHomeInUse) {
		t.Fatalf("second Open: %v, want ErrHomeInUse", err)
	}
	if want := "(process "; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the process", err)
	}
	a.Close()
	b, err := Open(&cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	b.Close()
}

// TestContactAddedInStore: a contact added to the key store by another
// program (the command-line tool, while a receiving Node runs) is picked
// up by the running Node, whose offers from it then arrive; removing it
// the same way stops them. ReadHistory shows the history of the running
// node without opening it.
func TestContactAddedInStore(t *testing.T) {
	tn := newMemNet()
	alice := tn.node(t, "alice", nil)
	bob := tn.node(t, "bob", func(c *Config) { c.ContactRefresh = 300 * time.Millisecond })
	if _, err := alice.AddContact(bob.Account(), "bob"); err != nil {
		t.Fatal(err)
	}
	// Bob's running node never hears of Alice: another program adds her.
	st, err := identity.OpenStore(filepath.Join(bob.home, identityDir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddContact(alice.Account(), "alice"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 20*time.Second, func() bool {
		devs, err := alice.ContactDevices(ctx, bob.Account())
		return err == nil && len(devs) == 1
	})
	src, data := file(t, t.TempDir(), "a.bin", 100<<10)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	in := nextOffer(t, bob, 20*time.Second)
	if in.Offer().Contact != "alice" {
		t.Fatalf("offer from %q", in.Offer().Contact)
	}
	if err := in.Accept(transfer.Destination{}); err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := in.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, p, data)
	h, err := ReadHistory(bob.home)
	if err != nil || len(h) != 1 || h[0].State != multidevice.Finished || h[0].Path != p {
		t.Fatalf("ReadHistory of a running node: %+v, %v", h, err)
	}

	if err := st.RemoveContact(alice.Account()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return !bob.isContact(alice.Account()) })
}

// TestSendRightAfterOpen is the command-line flow: a receiver runs, and a
// sender process opens its Node and sends at once, with no warm-up. The
// lookup waits for the DHT bootstrap instead of failing on an empty routing
// table, and the receiver finds the sender's fresh device list within its
// quick first retries.
func TestSendRightAfterOpen(t *testing.T) {
	tn := newTestNet(t, 2)
	bob := tn.node(t, "bob", func(c *Config) { c.AutoAccept = func(Offer) bool { return true } })
	aliceHome := filepath.Join(t.TempDir(), "alice")
	aliceID, _, err := Init(aliceHome, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(aliceID, "alice"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bob.PublishDevices(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(aliceHome)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddContact(bob.Account(), "bob"); err != nil {
		t.Fatal(err)
	}
	src, data := file(t, t.TempDir(), "now.bin", 64<<10)
	start := time.Now()
	alice := tn.open(t, aliceHome, nil)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("open to verified end: %v", time.Since(start))
	// The receiver saves its record right after the sender saw the end.
	waitFor(t, 5*time.Second, func() bool {
		h := bob.History()
		return len(h) == 1 && h[0].State == multidevice.Finished
	})
	sameFile(t, bob.History()[0].Path, data)
}
