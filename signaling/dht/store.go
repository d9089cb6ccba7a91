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
	sent atomic.Int64
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.sent.Add(1)
	return c.UDPConn.WriteTo(b, addr)
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
