package peerdrop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/internal/turnserver"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// aliceAndBob starts Alice (one device) and Bob (n devices), signaling in
// memory (these tests are of the Node, not of the DHT), contacts of
// each other, and waits until each sees the other's devices.
func aliceAndBob(t *testing.T, n int, aliceMod, bobMod func(*Config)) (*testNet, *testNode, []*testNode) {
	t.Helper()
	tn := newMemNet()
	alice := tn.node(t, "alice", aliceMod)
	bobs := []*testNode{tn.node(t, "bob-1", bobMod)}
	befriend(t, []*testNode{alice}, bobs)
	for i := 2; i <= n; i++ {
		bobs = append(bobs, tn.join(t, bobs[0], "bob-"+string(rune('0'+i)), bobMod))
	}
	converge(t, []*testNode{alice}, bobs)
	return tn, alice, bobs
}

func deviceStates(out *OutgoingTransfer) map[string]multidevice.Device {
	m := map[string]multidevice.Device{}
	for _, d := range out.Devices() {
		m[d.Name] = d
	}
	return m
}

// waitEvent waits until one of n's events matches.
func waitEvent(t *testing.T, n *testNode, within time.Duration, what string, match func(Event) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, e := range n.ev.list() {
			if match(e) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: no event %s within %v", n.DeviceName(), what, within)
}

func TestReceiverCancelsOneDeviceOthersContinue(t *testing.T) {
	_, alice, bobs := aliceAndBob(t, 3, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "big.bin", 24<<20)
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	offers := []*IncomingTransfer{nextOffer(t, bobs[0], 10*time.Second), nextOffer(t, bobs[1], 10*time.Second), nextOffer(t, bobs[2], 10*time.Second)}
	for _, o := range offers {
		if err := o.Accept(transfer.Destination{}); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, bobs[1], 20*time.Second, "progress", func(e Event) bool { return e.Bytes > 0 })
	offers[1].Cancel("changed my mind")
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	st := deviceStates(out)
	var ce *transfer.CancelError
	if d := st["bob-2"]; d.State != multidevice.Canceled || !errors.As(d.Err, &ce) || !ce.Remote || ce.Reason != "changed my mind" {
		t.Fatalf("canceling device: %v %v", d.State, d.Err)
	}
	for _, i := range []int{0, 2} {
		p, err := offers[i].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sameFile(t, p, data)
	}
	if a := out.Status(); a.State != multidevice.Finished {
		t.Fatalf("aggregate %v", a.State)
	}
}

func TestSenderCancels(t *testing.T) {
	_, alice, bobs := aliceAndBob(t, 2, nil, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "big.bin", 48<<20)
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once data flows to every device.
	waitFor(t, 20*time.Second, func() bool {
		for _, d := range out.Devices() {
			if d.Bytes == 0 {
				return false
			}
		}
		return true
	})
	out.Cancel()
	if err := out.Wait(ctx); err == nil {
		t.Fatal("a canceled transfer reported success")
	}
	a := out.Status()
	var de *multidevice.DevicesError
	if a.State != multidevice.Canceled || !errors.As(a.Err, &de) || !errors.Is(a.Err, ErrCanceledBySender) && !strings.Contains(a.Err.Error(), ErrCanceledBySender.Error()) {
		t.Fatalf("aggregate %v: %v", a.State, a.Err)
	}
	// Each receiver ends canceled with the sender's reason and keeps its
	// partial file for a re-ask.
	for _, b := range bobs {
		waitEvent(t, b, 10*time.Second, "canceled", func(e Event) bool { return e.State == multidevice.Canceled })
		waitFor(t, 5*time.Second, func() bool { h := b.History(); return len(h) == 1 && h[0].State == multidevice.Canceled })
		h := b.History()[0]
		if !strings.Contains(h.Error, ErrCanceledBySender.Error()) {
			t.Errorf("%s: %q", b.DeviceName(), h.Error)
		}
		parts, _ := filepath.Glob(filepath.Join(b.cfg.Home, "downloads", ".*"))
		if len(parts) != 1 {
			t.Errorf("%s: partial files %v", b.DeviceName(), parts)
		}
	}
}

// TestDeviceOffline: with no retries (DeliveryWindow negative), a device
// that does not answer fails at once. deliver_test.go has the default.
func TestDeviceOffline(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, republishes)
	_, alice, bobs := aliceAndBob(t, 3, func(c *Config) { c.RequestTimeout, c.DeliveryWindow = 2*time.Second, -1 },
		func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bobs[2].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "doc.pdf", 1<<20)
	out := sendAndWait(t, ctx, alice, bobs[0], src)
	st := deviceStates(out)
	if d := st["bob-3"]; d.State != multidevice.Failed || !errors.Is(d.Err, ErrNoAnswer) {
		t.Fatalf("offline device: %v %v", d.State, d.Err)
	}
	for _, b := range bobs[:2] {
		waitFor(t, 5*time.Second, func() bool { h := b.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
		sameFile(t, b.History()[0].Path, data)
	}
}

func TestAllRefuseAllFail(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, republishes)
	_, alice, bobs := aliceAndBob(t, 2, func(c *Config) { c.RequestTimeout, c.DeliveryWindow = 2*time.Second, -1 }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "x.txt", 1000)

	// All refuse.
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bobs {
		if err := nextOffer(t, b, 10*time.Second).Refuse("no thanks"); err != nil {
			t.Fatal(err)
		}
	}
	err = out.Wait(ctx)
	var de *multidevice.DevicesError
	if !errors.As(err, &de) || de.State != multidevice.Refused || out.Status().State != multidevice.Refused {
		t.Fatalf("all refused: %v", err)
	}
	var re *transfer.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "bob-1: refused") || !strings.Contains(err.Error(), "bob-2: refused") {
		t.Fatalf("all refused: %v", err)
	}

	// All offline: failed, naming each device and why.
	for _, b := range bobs {
		b.Close()
	}
	out, err = alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	err = out.Wait(ctx)
	if !errors.As(err, &de) || de.State != multidevice.Failed || !errors.Is(err, ErrNoAnswer) ||
		!strings.Contains(err.Error(), "bob-1: failed (no answer") || !strings.Contains(err.Error(), "bob-2: failed (no answer") {
		t.Fatalf("all failed: %v", err)
	}
	h := alice.History()
	if len(h) != 2 || h[0].State != multidevice.Failed || h[1].State != multidevice.Refused || !strings.Contains(h[0].Error, "no answer") {
		t.Fatalf("history %+v", h)
	}
}

func TestNonContactSender(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, republishes)
	tn := newMemNet()
	bob := tn.node(t, "bob", func(c *Config) { c.ContactRefresh = time.Hour })
	noRetry := func(c *Config) { c.RequestTimeout, c.DeliveryWindow = 2*time.Second, -1 }
	mallory := tn.node(t, "mallory", noRetry)
	carol := tn.node(t, "carol", noRetry)
	if _, err := mallory.AddContact(bob.Account(), "bob"); err != nil {
		t.Fatal(err)
	}
	befriend(t, []*testNode{carol}, []*testNode{bob})
	converge(t, []*testNode{carol}, []*testNode{bob})
	converge(t, []*testNode{mallory}, []*testNode{bob}) // mallory sees bob's list
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "spam.exe", 1000)

	// Mallory was never a contact: Bob never reads her mailbox.
	out, err := mallory.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("non-contact: %v", err)
	}
	// Carol was a contact and is removed: her request is dropped and counted.
	if err := bob.RemoveContact(carol.Account()); err != nil {
		t.Fatal(err)
	}
	out, err = carol.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("removed contact: %v", err)
	}
	if n := bob.Stats().Signaling.Dropped[signaling.ReasonNotContact]; n == 0 {
		t.Fatalf("the removed contact's request was not counted: %+v", bob.Stats().Signaling)
	}
	select {
	case o := <-bob.Offers():
		t.Fatalf("the application was bothered: %+v", o.Offer())
	default:
	}
	if len(bob.History()) != 0 {
		t.Fatalf("history %+v", bob.History())
	}
	// Sending to a non-contact is refused locally.
	if _, err := bob.SendFile(ctx, mallory.Account(), src); err == nil {
		t.Fatal("sent to a non-contact")
	}
}

func TestRelayedThroughCoturn(t *testing.T) {
	ts := turnserver.Start(t)
	relay := func(c *Config) {
		c.ICE.Mode = ice.ModeRelayOnly
		c.ICE.Servers = []ice.Server{{URL: ts.TURNURL(), Username: ts.User, Password: ts.Password}}
	}
	_, alice, bobs := aliceAndBob(t, 1, relay, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "relayed.bin", 4<<20)
	out := sendAndWait(t, ctx, alice, bobs[0], src)
	if d := out.Devices()[0]; !d.Relayed {
		t.Fatalf("not relayed: %+v", d)
	}
	waitFor(t, 5*time.Second, func() bool { h := bobs[0].History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	sameFile(t, bobs[0].History()[0].Path, data)
	relayed := false
	for _, e := range bobs[0].ev.list() {
		relayed = relayed || e.Relayed
	}
	if !relayed {
		t.Fatal("the receiver's events do not say relayed")
	}
}

func TestParallelTransfers(t *testing.T) {
	// 20 requests to one device share its four request slots: the last
	// waits behind four rounds of exchanges, so the default timeout (30 s)
	// applies here rather than the helpers' 5 s.
	_, alice, bobs := aliceAndBob(t, 1, func(c *Config) { c.RequestTimeout = 30 * time.Second },
		func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	const n = 20
	files := map[string][]byte{}
	var outs []*OutgoingTransfer
	for i := 0; i < n; i++ {
		name := "file-" + string(rune('a'+i)) + ".bin"
		p, data := file(t, dir, name, int64(256<<10+i*4099))
		files[name] = data
		out, err := alice.SendFile(ctx, bobs[0].Account(), p)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, o := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- o.Wait(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		done := 0
		for _, h := range bobs[0].History() {
			if h.State == multidevice.Finished {
				done++
			}
		}
		return done == n
	})
	for _, h := range bobs[0].History() {
		sameFile(t, h.Path, files[h.Name])
	}
}

func TestReask(t *testing.T) {
	_, alice, bobs := aliceAndBob(t, 1, nil, nil)
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "movie.mkv", 32<<20)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	in := nextOffer(t, bob, 10*time.Second)
	if err := in.Accept(transfer.Destination{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bob, 20*time.Second, "progress", func(e Event) bool { return e.Bytes > 1<<20 })
	in.Cancel("connection lost, say")
	if _, err := in.Wait(ctx); err == nil {
		t.Fatal("canceled transfer finished")
	}
	if err := out.Wait(ctx); err == nil {
		t.Fatal("sender reports success")
	}

	// Bob asks again; Alice's device checks he is the recipient, and he
	// resumes from his partial file.
	reaskResumes(t, ctx, bob, out.ID(), data)
	waitFor(t, 5*time.Second, func() bool { h := alice.History(); return h[0].State == multidevice.Finished })
	if _, err := bob.Reask(ctx, out.ID()); err == nil {
		t.Fatal("re-asked a finished transfer")
	}
	if _, err := bob.Reask(ctx, transfer.NewID()); !errors.Is(err, ErrUnknownTransfer) {
		t.Fatalf("unknown transfer: %v", err)
	}
}

func TestReaskByAnotherAccountRefused(t *testing.T) {
	tn, alice, bobs := aliceAndBob(t, 1, nil, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	carol := tn.node(t, "carol", nil)
	befriend(t, []*testNode{carol}, []*testNode{alice})
	converge(t, []*testNode{carol}, []*testNode{alice})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "private.txt", 1000)
	out := sendAndWait(t, ctx, alice, bobs[0], src)
	// Carol, a contact of Alice but not the recipient, asks for Bob's file.
	devs, err := carol.ContactDevices(ctx, alice.Account())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = carol.dial(ctx, devs[0].Peer(alice.Account()), request{kind: kindReask, id: out.ID()})
	var no *NoError
	if !errors.As(err, &no) || no.Code != NoNotAllowed {
		t.Fatalf("re-ask by another account: %v", err)
	}
	_, _, err = carol.dial(ctx, devs[0].Peer(alice.Account()), request{kind: kindReask, id: transfer.NewID()})
	if !errors.As(err, &no) || no.Code != NoUnknown {
		t.Fatalf("re-ask of an unknown transfer: %v", err)
	}
	// The source changed: a re-ask is refused rather than sending other bytes.
	if err := os.WriteFile(src, []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = bobs[0].dial(ctx, devs[0].Peer(alice.Account()), request{kind: kindReask, id: out.ID()})
	if !errors.As(err, &no) || no.Code != NoChanged {
		t.Fatalf("re-ask of a changed file: %v", err)
	}
	if alice.Stats().RefusedRequests != 3 {
		t.Fatalf("refused requests: %d", alice.Stats().RefusedRequests)
	}
}

// TestRestartReceiverMidTransfer: the receiver re-asks after a restart
// (with no retries by the sender; deliver_test.go has those).
func TestRestartReceiverMidTransfer(t *testing.T) {
	tn, alice, bobs := aliceAndBob(t, 1, func(c *Config) { c.DeliveryWindow = -1 }, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 40) })
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "backup.tar", 48<<20)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, bob, 20*time.Second, "progress", func(e Event) bool { return e.Bytes > 2<<20 })
	bob.Close()
	_ = out.Wait(ctx)

	// The restarted node shows the interrupted transfer and resumes it.
	bob2 := tn.open(t, bob.home, bob.cfg.modFrom())
	h := bob2.History()
	if len(h) != 1 || h[0].ID != out.ID() || h[0].State.Terminal() && h[0].State == multidevice.Finished || h[0].Bytes == 0 {
		t.Fatalf("history after restart: %+v", h)
	}
	converge(t, []*testNode{alice}, []*testNode{bob2})
	reaskResumes(t, ctx, bob2, out.ID(), data)
}

// reaskResumes re-asks for a transfer and checks that it resumed from the
// partial file and that the saved file is exactly data.
func reaskResumes(t *testing.T, ctx context.Context, n *testNode, id transfer.ID, data []byte) {
	t.Helper()
	again, err := n.Reask(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := again.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, p, data)
	if st := again.Status(); st.Offset == 0 {
		t.Fatalf("did not resume: %+v", st)
	}
}
