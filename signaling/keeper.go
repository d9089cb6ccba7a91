package signaling

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// Keeper keeps this device in its account's published device list: it
// merges the list found in the DHT with the last one it knows, adds or
// refreshes this device, and republishes before DHT nodes forget it.
//
// Every device of an account holds the account key, so every device runs
// a Keeper, and the list is the union of what they publish minus revoked
// devices. Concurrent publishes may briefly lose an entry; the next round
// of the device that was dropped puts it back. Revocation is honest-device
// revocation: the revoked device's own Keeper stops (and reports
// ErrRevoked), and the others will not add it back, but a stolen device
// that keeps running modified software still holds the account key; only a
// new account removes it for sure.
type Keeper struct {
	cfg    KeeperConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu      sync.Mutex // serializes rounds
	last    *DeviceList
	lastErr error
}

// StartKeeper publishes at once in the background and then every Interval.
// Transport, Account and Device are required (a nil cfg is an error).
func StartKeeper(cfg *KeeperConfig) (*Keeper, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	k := &Keeper{cfg: c, last: c.Known, kick: make(chan struct{}, 1)}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.wg.Add(1)
	go k.loop()
	return k, nil
}

// Close stops republishing.
func (k *Keeper) Close() error {
	k.cancel()
	k.wg.Wait()
	return nil
}

// List returns the last list published or seen, or nil.
func (k *Keeper) List() *DeviceList {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last
}

// Err returns the error of the last round (ErrRevoked once revoked).
func (k *Keeper) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// Refresh runs a round now (after a device joined, say) and returns the
// published list.
func (k *Keeper) Refresh(ctx context.Context) (*DeviceList, error) {
	return k.round(ctx, nil)
}

// Revoke removes a device of the account and publishes the list with it
// marked revoked. This device cannot revoke itself.
func (k *Keeper) Revoke(ctx context.Context, dev identity.DeviceID) (*DeviceList, error) {
	if dev == k.cfg.Device.ID() {
		return nil, errors.New("signaling: a device cannot revoke itself")
	}
	return k.round(ctx, &dev)
}

func (k *Keeper) loop() {
	defer k.wg.Done()
	if k.cfg.Start != nil {
		select {
		case <-k.cfg.Start:
		case <-k.ctx.Done():
			return
		}
	}
	// A young DHT grows: nodes that join later may be closer to the list's
	// target than the nodes it was first stored at, and a lookup that
	// asks only the closest would miss it (a device with ten contacts
	// that started after them did not find the first one's list for
	// minutes). So the first republishes come early, after 2 s, 8 s,
	// 32 s, 128 s, 512 s, then every Interval.
	retry, young := k.cfg.Retry, 2*time.Second
	for {
		ctx, cancel := context.WithTimeout(k.ctx, k.cfg.Timeout)
		start := time.Now()
		l, err := k.round(ctx, nil)
		cancel()
		if err == nil {
			k.cfg.Logger.Debug("device list published", "devices", len(l.Devices), "took", time.Since(start))
		}
		wait := min(young, k.cfg.Interval)
		switch {
		case errors.Is(err, ErrRevoked) || k.ctx.Err() != nil:
			return
		case err != nil:
			k.cfg.Logger.Debug("device list not published", "err", err, "retry", retry)
			wait = retry
			retry = min(2*retry, k.cfg.Interval)
		default:
			retry = k.cfg.Retry
			young *= 4
		}
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round looks up the list, merges it with the last known one, applies a
// revocation, puts this device in, and publishes.
func (k *Keeper) round(ctx context.Context, revoke *identity.DeviceID) (*DeviceList, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	for try := 0; try < 3; try++ {
		var l *DeviceList
		if l, err = k.merge(ctx, revoke); err != nil {
			break
		}
		// Another device may have published the same seq a moment
		// earlier: nodes then refuse ours, and a fresh merge fixes it.
		if err = PublishDeviceList(ctx, k.cfg.Transport, k.cfg.Account, l); err == nil {
			k.last, k.lastErr = l, nil
			return l, nil
		}
		if !errors.Is(err, ErrNotStored) {
			break
		}
	}
	k.lastErr = err
	return nil, err
}

func (k *Keeper) merge(ctx context.Context, revoke *identity.DeviceID) (*DeviceList, error) {
	now := k.cfg.Now()
	me := k.cfg.Device.ID()
	found, err := LookupDeviceList(ctx, k.cfg.Transport, k.cfg.Account.ID(), now)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err // a failed lookup must not shrink the list
	}
	lists := []*DeviceList{found, k.last} // the DHT's entries first: fresher
	out := &DeviceList{Updated: now}
	for _, l := range lists {
		if l == nil {
			continue
		}
		if !l.Updated.Before(out.Updated) {
			out.Updated = l.Updated.Add(time.Millisecond) // seq must grow
		}
		for _, r := range l.Revoked {
			if !slices.Contains(out.Revoked, r) {
				out.Revoked = append(out.Revoked, r)
			}
		}
	}
	if revoke != nil {
		r := [revokedPrefix]byte(revoke[:revokedPrefix])
		out.Revoked = slices.DeleteFunc(out.Revoked, func(x [revokedPrefix]byte) bool { return x == r })
		out.Revoked = append(out.Revoked, r) // newest last
	}
	if len(out.Revoked) > MaxRevoked {
		out.Revoked = out.Revoked[len(out.Revoked)-MaxRevoked:]
	}
	if out.IsRevoked(me) {
		return nil, ErrRevoked
	}
	self := EntryFor(k.cfg.Device, k.cfg.Name)
	out.Devices = append(out.Devices, self)
	for _, l := range lists {
		if l == nil {
			continue
		}
		for _, d := range l.Devices {
			if _, dup := out.Entry(d.Device); dup || out.IsRevoked(d.Device) || !now.Before(d.NotAfter) {
				continue
			}
			out.Devices = append(out.Devices, d)
		}
	}
	if len(out.Devices) > MaxDevices {
		return nil, fmt.Errorf("%w: the account has %d devices, limit %d; revoke one first", ErrTooLarge, len(out.Devices), MaxDevices)
	}
	return out, nil
}
