package peerdrop

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// retrySoon is a sender that gives up on an answer after 2 s and tries a
// waiting device again after about 300 ms.
func retrySoon(c *Config) { c.RequestTimeout, c.DeliveryRetry = 2*time.Second, 300*time.Millisecond }

func recordOf(r Record, name string) DeviceRecord {
	for _, d := range r.Devices {
		if d.Name == name {
			return d
		}
	}
	return DeviceRecord{}
}

func settled(t *testing.T, out *OutgoingTransfer, within time.Duration) {
	t.Helper()
	select {
	case <-out.Settled():
	case <-time.After(within):
		t.Fatalf("not settled within %v: %+v", within, out.Devices())
	}
}

// TestDeviceComesOnline: a device offline at send time waits while the
// others receive the file, and gets it, verified, once it starts.
func TestDeviceComesOnline(t *testing.T) {
	t.Parallel() // it mostly waits
	tn, alice, bobs := aliceAndBob(t, 3, retrySoon, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bobs[2].Close()
	src, data := file(t, t.TempDir(), "doc.pdf", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	settled(t, out, 30*time.Second)
	st := deviceStates(out)
	if d := st["bob-3"]; d.State != multidevice.Waiting || !errors.Is(d.Err, ErrNoAnswer) || d.Retry.IsZero() {
		t.Fatalf("offline device: %v %v, retry %v", d.State, d.Err, d.Retry)
	}
	if a := out.Status(); a.State != multidevice.Finished {
		t.Fatalf("aggregate %v, want finished (two devices have it)", a.State)
	}
	select {
	case <-out.Done():
		t.Fatal("done while a device waits")
	default:
	}
	if h := alice.History(); h[0].State != multidevice.Finished || recordOf(h[0], "bob-3").State != multidevice.Waiting || recordOf(h[0], "bob-3").Retry.IsZero() {
		t.Fatalf("history %+v", h[0])
	}
	waitEvent(t, alice, 5*time.Second, "a waiting event", func(e Event) bool {
		return e.State == multidevice.Waiting && e.DeviceName == "bob-3" && !e.Retry.IsZero() && e.Until.Equal(out.Until())
	})

	bob3 := tn.open(t, bobs[2].home, bobs[2].cfg.modFrom())
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := deviceStates(out)["bob-3"]; d.State != multidevice.Finished {
		t.Fatalf("bob-3: %v %v", d.State, d.Err)
	}
	waitFor(t, 5*time.Second, func() bool { h := bob3.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	sameFile(t, bob3.History()[0].Path, data)
	if h := alice.History(); recordOf(h[0], "bob-3").State != multidevice.Finished {
		t.Fatalf("history %+v", h[0].Devices)
	}
	if _, ok := alice.Outgoing(out.ID()); ok {
		t.Fatal("an ended transfer is still running")
	}
}

// TestPendingDeliveryAcrossRestart: the sender's node stops while the
// device waits; the next node on the home goes on and delivers.
func TestPendingDeliveryAcrossRestart(t *testing.T) {
	t.Parallel()
	tn, alice, bobs := aliceAndBob(t, 1, retrySoon, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bobs[0].Close()
	src, data := file(t, t.TempDir(), "notes.txt", 100<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	settled(t, out, 30*time.Second)
	if a := out.Status(); a.State != multidevice.Waiting || a.Err != nil {
		t.Fatalf("aggregate %v %v, want waiting", a.State, a.Err)
	}
	alice.Close()
	if err := out.Wait(ctx); !errors.Is(err, ErrWaiting) {
		t.Fatalf("Wait after Close: %v", err)
	}
	h, err := ReadHistory(alice.home)
	if err != nil || len(h) != 1 || h[0].State != multidevice.Waiting || h[0].Until.IsZero() {
		t.Fatalf("history after stop: %+v %v", h, err)
	}

	alice = tn.open(t, alice.home, alice.cfg.modFrom())
	if _, ok := alice.Outgoing(out.ID()); !ok {
		t.Fatal("the waiting delivery was not resumed")
	}
	bob := tn.open(t, bobs[0].home, bobs[0].cfg.modFrom())
	waitFor(t, 30*time.Second, func() bool { h := bob.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	sameFile(t, bob.History()[0].Path, data)
	waitFor(t, 5*time.Second, func() bool { h := alice.History(); return h[0].State == multidevice.Finished })
	waitEvent(t, alice, 5*time.Second, "the aggregate finished", func(e Event) bool {
		return e.Transfer == out.ID() && e.Device.IsZero() && e.State == multidevice.Finished
	})
}

// TestResumeAfterReceiverStops: the receiving device stops in the middle
// of the file; it is tried again once it runs again, which resumes from
// its partial file without asking its user a second time.
func TestResumeAfterReceiverStops(t *testing.T) {
	t.Parallel()
	// Bob's node stops at the first progress of the file; its event
	// handler holds the receiver meanwhile, so that it stops mid-file.
	stops, arm := closesAt(func(e Event) bool {
		return e.Direction == Incoming && e.Kind == EventProgress && e.Bytes > 0
	}, 300*time.Millisecond)
	tn, alice, bobs := aliceAndBob(t, 1, retrySoon, stops)
	bob := bobs[0]
	closed := arm(bob)
	const size = 64 << 20
	src, data := file(t, t.TempDir(), "video.mp4", size)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	in := nextOffer(t, bob, 10*time.Second)
	if err := in.Accept(transfer.Destination{}); err != nil {
		t.Fatal(err)
	}
	<-in.Done()
	<-closed
	var got int64
	if st := in.Status(); st.State == transfer.StateFinished {
		t.Skip("the file arrived before the receiver stopped")
	} else {
		got = st.Bytes
	}
	waitFor(t, 20*time.Second, func() bool { return deviceStates(out)["bob-1"].State == multidevice.Waiting })

	bob = tn.open(t, bob.home, bob.cfg.modFrom()) // no AutoAccept: the earlier Accept stands
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { h := bob.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	sameFile(t, bob.History()[0].Path, data)
	if parts, _ := filepath.Glob(filepath.Join(bob.home, "downloads", ".*")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
	// The second attempt started where the first stopped.
	resumed := false
	for _, e := range alice.ev.list() {
		if e.Kind == EventState && e.Device == bob.Device() && e.State == multidevice.Ongoing && e.Bytes >= got && got > 0 {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no attempt resumed from %d bytes", got)
	}
}

// TestCancelWaiting: canceling a transfer ends its waiting devices.
func TestCancelWaiting(t *testing.T) {
	t.Parallel()
	_, alice, bobs := aliceAndBob(t, 1, retrySoon, nil)
	bobs[0].Close()
	src, _ := file(t, t.TempDir(), "a.txt", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	settled(t, out, 20*time.Second)
	out.Cancel()
	err = out.Wait(ctx)
	if !errors.Is(err, ErrCanceledBySender) || out.Status().State != multidevice.Canceled {
		t.Fatalf("canceled waiting: %v %v", out.Status().State, err)
	}
	if h := alice.History(); h[0].State != multidevice.Canceled {
		t.Fatalf("history %+v", h[0])
	}
}

// TestWindowEnds: a device that never answers fails when the window ends.
func TestWindowEnds(t *testing.T) {
	t.Parallel()
	_, alice, bobs := aliceAndBob(t, 1, func(c *Config) {
		retrySoon(c)
		c.RequestTimeout, c.DeliveryWindow = time.Second, 3*time.Second
	}, nil)
	bobs[0].Close()
	src, _ := file(t, t.TempDir(), "a.txt", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := alice.SendFile(ctx, bobs[0].Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	err = out.Wait(ctx)
	if !errors.Is(err, ErrNoAnswer) || out.Status().State != multidevice.Failed {
		t.Fatalf("after the window: %v %v", out.Status().State, err)
	}
	tries := 0
	for _, e := range alice.ev.list() {
		if e.Device == bobs[0].Device() && e.State == multidevice.Connecting && e.Kind == EventState {
			tries++
		}
	}
	if tries < 2 {
		t.Fatalf("tried %d times within the window", tries)
	}
}
