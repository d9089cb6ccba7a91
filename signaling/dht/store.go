package dht

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/dht/v2/bep44"
)

// countingConn counts packets sent.
type countingConn struct {
	*net.UDPConn
	sent, sentBytes, received, receivedBytes atomic.Int64
	ro                                       *readOnly // marks queries and replies "ro" while on (readonly.go)
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.sent.Add(1)
	if c.ro != nil && c.ro.on() {
		m := markPacket(b)
		c.sentBytes.Add(int64(len(m)))
		if _, err := c.UDPConn.WriteTo(m, addr); err != nil {
			return 0, err
		}
		return len(b), nil // the caller's packet was sent, with "ro" added
	}
	c.sentBytes.Add(int64(len(b)))
	return c.UDPConn.WriteTo(b, addr)
}

// ReadFrom also shows replies to the read-only mode (at most one a
// second), which learns from them whether a NAT is in front of us.
func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	if err == nil {
		c.received.Add(1)
		c.receivedBytes.Add(int64(n))
	}
	if err == nil && c.ro != nil && c.ro.mode == ReadOnlyBehindNAT {
		if ua, ok := addr.(*net.UDPAddr); ok {
			c.ro.sample(ua.AddrPort(), b[:n])
		}
	}
	return n, addr, err
}

// boundedStore is a bep44.Store that keeps at most max items, evicting
// the oldest put first (anacrolix's memory store never evicts).
type boundedStore struct {
	onPut func(*bep44.Item) // after a put is kept; must not block
	mu    sync.Mutex
	max   int
	items map[bep44.Target]*bep44.Item
	order []bep44.Target
}

func newBoundedStore(max int) *boundedStore {
	return &boundedStore{max: max, items: make(map[bep44.Target]*bep44.Item)}
}

func (s *boundedStore) Put(i *bep44.Item) error {
	s.mu.Lock()
	t := i.Target()
	if _, ok := s.items[t]; !ok {
		for len(s.items) >= s.max && len(s.order) > 0 {
			delete(s.items, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, t)
	}
	s.items[t] = i
	if len(s.order) > 2*s.max { // drop targets deleted on expiry
		live := s.order[:0]
		for _, t := range s.order {
			if _, ok := s.items[t]; ok {
				live = append(live, t)
			}
		}
		s.order = live
	}
	s.mu.Unlock()
	if s.onPut != nil {
		s.onPut(i)
	}
	return nil
}

func (s *boundedStore) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.items[t]; ok {
		return i, nil
	}
	return nil, bep44.ErrItemNotFound
}

func (s *boundedStore) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, t)
	return nil
}

func (s *boundedStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
