package peerdrop

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// TestSendToThreeDevices: Alice sends to Bob's three devices; one accepts,
// one refuses, one accepts into a chosen directory. The aggregate is
// finished, each device has its own state, both accepting devices have the
// exact bytes, and the history says so on both sides.
func TestSendToThreeDevices(t *testing.T) {
	tn := newTestNet(t, 4)
	alice := tn.node(t, "alice", nil)
	bob1 := tn.node(t, "bob-laptop", nil)
	befriend(t, []*testNode{alice}, []*testNode{bob1})
	bob2 := tn.join(t, bob1, "bob-phone", nil)
	bob3 := tn.join(t, bob1, "bob-tablet", nil)
	bobs := []*testNode{bob1, bob2, bob3}
	converge(t, []*testNode{alice}, bobs)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, data := file(t, t.TempDir(), "holiday photo.jpg", 3<<20+17)
	out, err := alice.SendFile(ctx, bob1.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	o1 := nextOffer(t, bob1, 10*time.Second)
	o2 := nextOffer(t, bob2, 10*time.Second)
	o3 := nextOffer(t, bob3, 10*time.Second)
	for _, o := range []*IncomingTransfer{o1, o2, o3} {
		of := o.Offer()
		if of.Transfer != out.ID() || of.From != alice.Account() || of.Device != alice.Device() || of.Name != "holiday photo.jpg" || of.Size != int64(len(data)) || of.MediaType != "image/jpeg" || of.Contact != "a" {
			t.Fatalf("offer %+v", of)
		}
	}
	if err := o2.Refuse("not on my phone"); err != nil {
		t.Fatal(err)
	}
	if err := o1.Accept(transfer.Destination{}); err != nil {
		t.Fatal(err)
	}
	chosen := t.TempDir()
	if err := o3.Accept(transfer.Destination{Dir: chosen}); err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if a := out.Status(); a.State != multidevice.Finished || a.Bytes != int64(len(data)) {
		t.Fatalf("aggregate %+v", a)
	}
	want := map[string]multidevice.State{"bob-laptop": multidevice.Finished, "bob-phone": multidevice.Refused, "bob-tablet": multidevice.Finished}
	for _, d := range out.Devices() {
		if d.State != want[d.Name] {
			t.Errorf("device %s: %v (%v), want %v", d.Name, d.State, d.Err, want[d.Name])
		}
		if d.Name == "bob-phone" {
			var re *transfer.RefusedError
			if !errors.As(d.Err, &re) || re.Reason != "not on my phone" {
				t.Errorf("refusal reason: %v", d.Err)
			}
		}
	}
	p1, err := o1.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, p1, data)
	p3, err := o3.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, p3, data)
	if _, err := o2.Wait(ctx); err == nil {
		t.Fatal("the refused offer has a file")
	}

	// History on both sides.
	h := alice.History()
	if len(h) != 1 || h[0].ID != out.ID() || h[0].State != multidevice.Finished || len(h[0].Devices) != 3 || h[0].Direction != Outgoing {
		t.Fatalf("alice's history: %+v", h)
	}
	for _, b := range bobs {
		h := b.History()
		if len(h) != 1 || h[0].Direction != Incoming || h[0].PeerDevice != alice.Device() {
			t.Fatalf("%s history: %+v", b.DeviceName(), h)
		}
	}
	if h := bob2.History(); h[0].State != multidevice.Refused {
		t.Fatalf("refusing device's record: %+v", h[0])
	}

	// Events: the aggregate reached finished, and each device reported.
	var aggFinished bool
	devStates := map[string]bool{}
	for _, e := range alice.ev.list() {
		if e.Device.IsZero() && e.State == multidevice.Finished {
			aggFinished = true
		}
		if !e.Device.IsZero() && e.Kind == EventState {
			devStates[e.DeviceName+"/"+e.State.String()] = true
		}
	}
	if !aggFinished || !devStates["bob-phone/refused"] || !devStates["bob-laptop/finished"] || !devStates["bob-laptop/ongoing"] {
		t.Fatalf("events: aggregate finished %v, device states %v", aggFinished, devStates)
	}
}
