package signaling

import (
	"context"
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// Device lists. Each account publishes its devices as a BEP 44 item signed
// by the account key itself, salt "peerdrop-devices-v1", so anyone who
// knows the account ID finds it and nobody else can write it. The account
// signature binds each device key and sealing key to the account, so
// certificates are not repeated in the list (at ~400 bytes each they would
// limit it to two devices); devices present their certificates in every
// sealed message and TLS handshake.
//
//	0   1  version = 1
//	1   8  updated, Unix milliseconds (also the item's seq)
//	9   1  device count n (≤ MaxDevices)
//	then n entries:
//	    32 device ID (Ed25519 signing key)
//	    32 X25519 sealing key
//	    8  certificate NotAfter, Unix seconds
//	    1  name length l (≤ 32), then l bytes of UTF-8 name
//	then 1  revoked count r (≤ MaxRevoked)
//	    r × 8 first bytes of a revoked device ID
//
// The full list (8 devices with 32-byte names and 8 revocations) is 915
// bytes, inside the 1000 a BEP 44 value allows.
const (
	MaxDevices       = 8
	MaxRevoked       = 8
	maxDeviceName    = 32
	deviceListFormat = 1
	revokedPrefix    = 8
)

var deviceListSalt = []byte("peerdrop-devices-v1")

// DeviceEntry is one device of an account.
type DeviceEntry struct {
	Device   identity.DeviceID
	Sealing  *ecdh.PublicKey
	NotAfter time.Time
	Name     string
}

// Peer returns what a Signaler needs to reach the device.
func (e DeviceEntry) Peer(account identity.AccountID) Peer {
	return Peer{Account: account, Device: e.Device, Sealing: e.Sealing}
}

// DeviceList is an account's published list of devices.
type DeviceList struct {
	Account identity.AccountID
	Updated time.Time
	Devices []DeviceEntry
	// Revoked holds the first 8 bytes of the IDs of the latest revoked
	// devices (at most MaxRevoked), so the account's other devices do not
	// add them back and a revoked device learns it was revoked.
	Revoked [][revokedPrefix]byte
}

// IsRevoked reports whether the list revokes the device.
func (l *DeviceList) IsRevoked(id identity.DeviceID) bool {
	for _, r := range l.Revoked {
		if [revokedPrefix]byte(id[:revokedPrefix]) == r {
			return true
		}
	}
	return false
}

// Entry returns the list's entry for a device.
func (l *DeviceList) Entry(id identity.DeviceID) (DeviceEntry, bool) {
	for _, d := range l.Devices {
		if d.Device == id {
			return d, true
		}
	}
	return DeviceEntry{}, false
}

// EntryFor returns the list entry of a device of this process.
func EntryFor(d *identity.Device, name string) DeviceEntry {
	c := d.Cert()
	return DeviceEntry{Device: d.ID(), Sealing: c.SealingKey, NotAfter: c.NotAfter, Name: name}
}

func (l *DeviceList) marshal() ([]byte, error) {
	if len(l.Devices) > MaxDevices {
		return nil, fmt.Errorf("%w: %d devices, limit %d", ErrTooLarge, len(l.Devices), MaxDevices)
	}
	if len(l.Revoked) > MaxRevoked {
		return nil, fmt.Errorf("%w: %d revoked devices, limit %d", ErrTooLarge, len(l.Revoked), MaxRevoked)
	}
	b := []byte{deviceListFormat}
	b = binary.BigEndian.AppendUint64(b, uint64(l.Updated.UnixMilli()))
	b = append(b, byte(len(l.Devices)))
	for _, d := range l.Devices {
		name := identity.CleanName(d.Name, maxDeviceName)
		for len(name) > maxDeviceName { // CleanName counts runes; the format counts bytes
			name = name[:len(name)-1]
		}
		b = append(b, d.Device[:]...)
		b = append(b, d.Sealing.Bytes()...)
		b = binary.BigEndian.AppendUint64(b, uint64(d.NotAfter.Unix()))
		b = append(b, byte(len(name)))
		b = append(b, name...)
	}
	b = append(b, byte(len(l.Revoked)))
	for _, r := range l.Revoked {
		b = append(b, r[:]...)
	}
	return b, nil
}

func parseDeviceList(account identity.AccountID, b []byte) (*DeviceList, error) {
	bad := func(f string, a ...any) (*DeviceList, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadDeviceList, fmt.Sprintf(f, a...))
	}
	if len(b) < 10 || b[0] != deviceListFormat {
		return bad("not a version %d list", deviceListFormat)
	}
	list := &DeviceList{Account: account, Updated: time.UnixMilli(int64(binary.BigEndian.Uint64(b[1:9])))}
	n := int(b[9])
	if n > MaxDevices {
		return bad("%d devices", n)
	}
	b = b[10:]
	for i := 0; i < n; i++ {
		if len(b) < 73 {
			return bad("entry %d truncated", i)
		}
		var e DeviceEntry
		copy(e.Device[:], b[:32])
		seal, err := ecdh.X25519().NewPublicKey(b[32:64])
		if err != nil {
			return bad("entry %d: sealing key: %v", i, err)
		}
		e.Sealing = seal
		e.NotAfter = time.Unix(int64(binary.BigEndian.Uint64(b[64:72])), 0)
		nameLen := int(b[72])
		if nameLen > maxDeviceName || len(b) < 73+nameLen {
			return bad("entry %d: name", i)
		}
		e.Name = identity.CleanName(string(b[73:73+nameLen]), maxDeviceName)
		b = b[73+nameLen:]
		list.Devices = append(list.Devices, e)
	}
	if len(b) < 1 || int(b[0]) > MaxRevoked || len(b) < 1+int(b[0])*revokedPrefix {
		return bad("revoked section")
	}
	for i := 0; i < int(b[0]); i++ {
		list.Revoked = append(list.Revoked, [revokedPrefix]byte(b[1+i*revokedPrefix:]))
	}
	b = b[1+len(list.Revoked)*revokedPrefix:]
	if len(b) != 0 {
		return bad("%d trailing bytes", len(b))
	}
	return list, nil
}

// PublishDeviceList signs the list with the account key and stores it.
// Updated (the seq) must grow with every change; zero means now.
func PublishDeviceList(ctx context.Context, t Transport, acct *identity.Account, list *DeviceList) error {
	if list.Updated.IsZero() {
		list.Updated = time.Now()
	}
	list.Account = acct.ID()
	v, err := list.marshal()
	if err != nil {
		return err
	}
	it, err := signItem(acct.PrivateKey(), deviceListSalt, list.Updated.UnixMilli(), v)
	if err != nil {
		return err
	}
	if err := t.Put(ctx, it); err != nil {
		return fmt.Errorf("signaling: publish device list: %w", err)
	}
	return nil
}

// DeviceListTarget is the DHT target of an account's device list: a
// Listener subscribed to it learns at once when the account publishes
// (a device of it starts, joins or is revoked).
func DeviceListTarget(account identity.AccountID) [20]byte {
	var key [32]byte
	copy(key[:], account[:])
	return Target(key, deviceListSalt)
}

// LookupDeviceList finds and verifies an account's device list. Devices
// whose certificate has expired, or that the list revokes, are left out.
func LookupDeviceList(ctx context.Context, t Transport, account identity.AccountID, now time.Time) (*DeviceList, error) {
	var key [32]byte
	copy(key[:], account[:])
	it, err := t.Get(ctx, key, deviceListSalt)
	if err != nil {
		return nil, fmt.Errorf("signaling: device list of %s: %w", account.Short(), err)
	}
	if !it.Verify() || it.Key != key {
		return nil, fmt.Errorf("%w: signature", ErrBadDeviceList)
	}
	l, err := parseDeviceList(account, it.Value)
	if err != nil {
		return nil, err
	}
	if l.Updated.UnixMilli() != it.Seq {
		return nil, fmt.Errorf("%w: seq %d does not match the list time", ErrBadDeviceList, it.Seq)
	}
	live := l.Devices[:0]
	for _, d := range l.Devices {
		if now.Before(d.NotAfter) && !l.IsRevoked(d.Device) {
			live = append(live, d)
		}
	}
	l.Devices = live
	return l, nil
}

// Directory caches device lists of other accounts for a TTL.
type Directory struct {
	Transport Transport
	// TTL is how long a list is trusted before it is fetched again.
	// Default: 10 minutes.
	TTL time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[identity.AccountID]cached
}

type cached struct {
	list    *DeviceList
	fetched time.Time
}

// SetTTL changes TTL while the Directory is in use.
func (d *Directory) SetTTL(ttl time.Duration) {
	d.mu.Lock()
	d.TTL = ttl
	d.mu.Unlock()
}

// Lookup returns the account's device list, from the cache when fresh.
func (d *Directory) Lookup(ctx context.Context, account identity.AccountID) (*DeviceList, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	d.mu.Lock()
	ttl := d.TTL
	c, ok := d.cache[account]
	d.mu.Unlock()
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	if ok && now().Sub(c.fetched) < ttl {
		return c.list, nil
	}
	l, err := LookupDeviceList(ctx, d.Transport, account, now())
	if err != nil {
		if ok {
			return c.list, nil // stale beats nothing while the DHT is unreachable
		}
		return nil, err
	}
	d.mu.Lock()
	if d.cache == nil {
		d.cache = make(map[identity.AccountID]cached)
	}
	if old, ok := d.cache[account]; !ok || !old.list.Updated.After(l.Updated) {
		d.cache[account] = cached{list: l, fetched: now()}
	}
	d.mu.Unlock()
	return l, nil
}

// Forget drops an account from the cache (after a revocation, say).
func (d *Directory) Forget(account identity.AccountID) {
	d.mu.Lock()
	delete(d.cache, account)
	d.mu.Unlock()
}
