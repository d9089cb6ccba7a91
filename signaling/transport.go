package signaling

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"fmt"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/torrent/bencode"
)

// Limits of a BEP 44 mutable item.
const (
	maxValue = 1000 // bencoded
	maxSalt  = 64
)

// Item is a BEP 44 mutable item whose value is a byte string.
type Item struct {
	Key   [32]byte // Ed25519 public key
	Salt  []byte
	Seq   int64
	Value []byte
	Sig   [64]byte
}

// Target is the DHT location of an item: SHA-1(key || salt).
func Target(key [32]byte, salt []byte) [20]byte {
	return sha1.Sum(append(key[:], salt...))
}

// Target of the item.
func (it Item) Target() [20]byte { return Target(it.Key, it.Salt) }

// NewItem makes the BEP 44 mutable item for value at salt, signed by priv.
// It fails with ErrTooLarge beyond BEP 44's limits.
func NewItem(priv ed25519.PrivateKey, salt []byte, seq int64, value []byte) (Item, error) {
	return signItem(priv, salt, seq, value)
}

// signItem makes the BEP 44 item for value, signed by priv.
func signItem(priv ed25519.PrivateKey, salt []byte, seq int64, value []byte) (Item, error) {
	if len(salt) > maxSalt {
		return Item{}, fmt.Errorf("%w: salt %d bytes", ErrTooLarge, len(salt))
	}
	bv := bencode.MustMarshal(value)
	if len(bv) > maxValue {
		return Item{}, fmt.Errorf("%w: value %d bytes bencoded", ErrTooLarge, len(bv))
	}
	it := Item{Salt: append([]byte(nil), salt...), Seq: seq, Value: append([]byte(nil), value...)}
	copy(it.Key[:], priv.Public().(ed25519.PublicKey))
	copy(it.Sig[:], bep44.Sign(priv, salt, seq, bv))
	return it, nil
}

// Verify checks the item's size limits and signature.
func (it Item) Verify() bool {
	bv := bencode.MustMarshal(it.Value)
	return len(bv) <= maxValue && len(it.Salt) <= maxSalt && bep44.Verify(it.Key[:], it.Salt, it.Seq, bv, it.Sig[:])
}

// Transport stores and finds BEP 44 mutable items. Implementations:
// *dht.Node (package signaling/dht, the BitTorrent DHT) and
// *MemoryTransport (tests).
type Transport interface {
	// Put stores the item; it fails with ErrNotStored if no node took it.
	// A node keeps the item with the highest seq.
	Put(ctx context.Context, it Item) error
	// Get returns the verified item with the highest seq at (key, salt), or
	// ErrNotFound.
	Get(ctx context.Context, key [32]byte, salt []byte) (Item, error)
}

// Listener is implemented by Transports that can tell of puts instead of
// being polled: *dht.Node (at DHT nodes that run peerdrop's listen
// extension, see signaling/dht/listen.go) and *MemoryTransport with
// Notify set. A Signaler over a Listener subscribes the request slots of
// its watched peers and polls a listened peer only every ListenedPoll.
type Listener interface {
	// Subscribe returns a new subscription with no targets, or nil if the
	// transport cannot listen.
	Subscribe() Subscription
}

// Subscription is a set of DHT targets whose puts are notified.
type Subscription interface {
	// Set replaces the targets.
	Set(targets [][20]byte)
	// Listening reports whether puts at target are notified now; if not,
	// it must be polled.
	Listening(target [20]byte) bool
	// Updates delivers verified items put at the targets. Items may be
	// missed (a full channel, a lost packet): Listening is a promise of
	// speed, not of delivery, so listened targets are still polled slowly.
	Updates() <-chan Item
	// Close ends the subscription.
	Close()
}

// MemoryTransport is an in-process Transport with BEP 44 rules (signature
// checks, seq ordering, expiry) for fast tests. Safe for concurrent use.
type MemoryTransport struct {
	// Exp is how long an item lives after its last put. Default: 2h.
	Exp time.Duration
	// Latency, if set, delays every operation (to model a DHT).
	Latency time.Duration
	// Notify makes it a Listener: puts at subscribed targets are notified.
	Notify bool

	mu    sync.Mutex
	items map[[20]byte]memItem
	subs  map[*memSub]bool
	puts  int
	gets  int
}

// Subscribe implements Listener; it returns nil unless Notify is set.
func (m *MemoryTransport) Subscribe() Subscription {
	if !m.Notify {
		return nil
	}
	s := &memSub{m: m, updates: make(chan Item, 64)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.subs == nil {
		m.subs = make(map[*memSub]bool)
	}
	m.subs[s] = true
	return s
}

type memSub struct {
	m       *MemoryTransport
	updates chan Item
	targets map[[20]byte]bool // guarded by m.mu
}

func (s *memSub) Set(targets [][20]byte) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.targets = make(map[[20]byte]bool, len(targets))
	for _, t := range targets {
		s.targets[t] = true
	}
}

func (s *memSub) Listening(target [20]byte) bool {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.targets[target]
}

func (s *memSub) Updates() <-chan Item { return s.updates }

func (s *memSub) Close() {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	delete(s.m.subs, s)
}

type memItem struct {
	Item
	stored time.Time
}

// Put implements Transport.
func (m *MemoryTransport) Put(ctx context.Context, it Item) error {
	if err := m.wait(ctx); err != nil {
		return err
	}
	if !it.Verify() {
		return fmt.Errorf("%w: invalid item", ErrNotStored)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.items == nil {
		m.items = make(map[[20]byte]memItem)
	}
	t := it.Target()
	if old, ok := m.items[t]; ok && !m.expired(old) && old.Seq > it.Seq {
		return fmt.Errorf("%w: seq %d older than %d", ErrNotStored, it.Seq, old.Seq)
	}
	m.items[t] = memItem{Item: it, stored: time.Now()}
	for s := range m.subs {
		if s.targets[t] {
			select {
			case s.updates <- it:
			default:
			}
		}
	}
	return nil
}

// Get implements Transport.
func (m *MemoryTransport) Get(ctx context.Context, key [32]byte, salt []byte) (Item, error) {
	if err := m.wait(ctx); err != nil {
		return Item{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	it, ok := m.items[Target(key, salt)]
	if !ok || m.expired(it) {
		return Item{}, ErrNotFound
	}
	return it.Item, nil
}

// Ops returns how many puts and gets were served.
func (m *MemoryTransport) Ops() (puts, gets int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts, m.gets
}

// Items returns how many unexpired items are stored.
func (m *MemoryTransport) Items() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, it := range m.items {
		if !m.expired(it) {
			n++
		}
	}
	return n
}

func (m *MemoryTransport) expired(it memItem) bool {
	exp := m.Exp
	if exp == 0 {
		exp = 2 * time.Hour
	}
	return time.Since(it.stored) > exp
}

func (m *MemoryTransport) wait(ctx context.Context) error {
	if m.Latency == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(m.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
