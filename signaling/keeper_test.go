package signaling

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listHas(ctx context.Context, tr Transport, acct identity.AccountID, devs ...identity.DeviceID) func() bool {
	return func() bool {
		l, err := LookupDeviceList(ctx, tr, acct, time.Now())
		if err != nil || len(l.Devices) != len(devs) {
			return false
		}
		for _, d := range devs {
			if _, ok := l.Entry(d); !ok {
				return false
			}
		}
		return true
	}
}

func startKeeper(t *testing.T, c KeeperConfig) *Keeper {
	t.Helper()
	k, err := StartKeeper(&c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestKeeperMergeAndRevoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &MemoryTransport{}
	a := newWho(t)
	d2, _ := a.acct.NewDevice(nil, time.Now(), 0)
	d3, _ := a.acct.NewDevice(nil, time.Now(), 0)

	k1 := startKeeper(t, KeeperConfig{Transport: tr, Account: a.acct, Device: a.dev, Name: "laptop", Interval: 50 * time.Millisecond, Retry: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "the first device listed", listHas(ctx, tr, a.acct.ID(), a.dev.ID()))
	k2 := startKeeper(t, KeeperConfig{Transport: tr, Account: a.acct, Device: d2, Name: "phone", Interval: 50 * time.Millisecond, Retry: 20 * time.Millisecond})
	k3 := startKeeper(t, KeeperConfig{Transport: tr, Account: a.acct, Device: d3, Name: "tablet", Interval: 50 * time.Millisecond, Retry: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "three devices listed", listHas(ctx, tr, a.acct.ID(), a.dev.ID(), d2.ID(), d3.ID()))

	// The laptop revokes the tablet: the tablet's keeper stops with
	// ErrRevoked and the others never add it back.
	l, err := k1.Revoke(ctx, d3.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Entry(d3.ID()); ok || !l.IsRevoked(d3.ID()) {
		t.Fatalf("revoked list: %+v", l)
	}
	waitFor(t, 5*time.Second, "the tablet to learn it was revoked", func() bool { return errors.Is(k3.Err(), ErrRevoked) })
	time.Sleep(200 * time.Millisecond) // several rounds of every keeper
	if !listHas(ctx, tr, a.acct.ID(), a.dev.ID(), d2.ID())() {
		t.Fatal("the revoked device came back, or another one went missing")
	}
	if _, err := k2.Revoke(ctx, d2.ID()); err == nil {
		t.Fatal("a device revoked itself")
	}
	if _, err := k1.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKeeperKeepsKnownDevices(t *testing.T) {
	// The DHT lost the list (all nodes restarted, say): the keeper merges
	// the list it knew, so the account's other devices are not dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newWho(t)
	d2, _ := a.acct.NewDevice(nil, time.Now(), 0)
	old, _ := a.acct.NewDevice(nil, time.Now().Add(-48*time.Hour), time.Hour)      // expired
	known := &DeviceList{Account: a.acct.ID(), Updated: time.Now().Add(time.Hour), // a clock ahead
		Devices: []DeviceEntry{EntryFor(d2, "phone"), EntryFor(old, "old")}}
	tr := &MemoryTransport{}
	k := startKeeper(t, KeeperConfig{Transport: tr, Account: a.acct, Device: a.dev, Known: known})
	waitFor(t, 5*time.Second, "both live devices listed", listHas(ctx, tr, a.acct.ID(), a.dev.ID(), d2.ID()))
	if l := k.List(); !l.Updated.After(known.Updated) {
		t.Fatalf("seq did not grow past the known list: %v <= %v", l.Updated, known.Updated)
	}

	// A full account refuses a ninth device with a clear error.
	full := &DeviceList{Account: a.acct.ID(), Updated: time.Now()}
	for range MaxDevices {
		d, _ := a.acct.NewDevice(nil, time.Now(), 0)
		full.Devices = append(full.Devices, EntryFor(d, "d"))
	}
	k9, err := StartKeeper(&KeeperConfig{Transport: &MemoryTransport{}, Account: a.acct, Device: a.dev, Known: full, Retry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer k9.Close()
	waitFor(t, 5*time.Second, "the too-many-devices error", func() bool { return errors.Is(k9.Err(), ErrTooLarge) })
}
