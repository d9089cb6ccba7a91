package dht

import (
	"context"
	"crypto/rand"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"golang.org/x/time/rate"
)

// Being a good DHT citizen. anacrolix/dht refers other nodes only to
// "good" nodes: ones that answered one of its own queries in the last 15
// minutes. A node that only answers (a bootstrap node, or any node whose
// clients query it but which queries nobody) has no good nodes, so its
// replies carry no nodes, every client's table stays at that one node, and
// every item lands on it alone. So a Node:
//
//   - pings back a node that queried it (once per address per 10 min, at
//     most 20 a second), which makes it good if it answers;
//   - every Maintain (default 5 min), pings the table's nodes it has not
//     heard from within 14 min and runs a find_node traversal towards its
//     own ID and one towards a random ID, so its table and its clients'
//     tables keep the nodes that are alive;
//   - answers get_peers with a token and stores announced peers in a
//     bounded store (anacrolix without a peer store answers with no token).

const (
	pingBackEvery = 10 * time.Minute
	heardFresh    = 14 * time.Minute
	// listenPingEvery paces the ping-backs a subscriber not heard lately
	// causes (see onListen): its first ping-back was lost, say.
	listenPingEvery = 5 * time.Second
)

type citizen struct {
	pingBack chan netip.AddrPort // from the query hook (under the server lock)
	limit    *rate.Limiter

	mu    sync.Mutex
	asked map[netip.AddrPort]time.Time // last ping-back per address
	heard map[netip.AddrPort]time.Time // last reply to one of our queries
	dead  map[netip.AddrPort]failures  // time outs since the last reply (see traverse.go)
}

func newCitizen() *citizen {
	return &citizen{
		pingBack: make(chan netip.AddrPort, 256),
		limit:    rate.NewLimiter(20, 20),
		asked:    make(map[netip.AddrPort]time.Time),
		heard:    make(map[netip.AddrPort]time.Time),
		dead:     make(map[netip.AddrPort]failures),
	}
}

// queried is called by the query hook: it must not block.
func (c *citizen) queried(src netip.AddrPort) { c.pingBackAfter(src, pingBackEvery) }

// pingBackAfter queues a ping-back of src unless one was queued within
// every (or the limiter says no); it must not block.
func (c *citizen) pingBackAfter(src netip.AddrPort, every time.Duration) {
	now := time.Now()
	c.mu.Lock()
	last, ok := c.asked[src]
	fresh := ok && now.Sub(last) < every
	if !fresh {
		if roomFor(c.asked, src, func(t time.Time) time.Time { return t }, pingBackEvery, now) {
			c.asked[src] = now
		} else {
			fresh = true // too many sources at once: skip
		}
	}
	c.mu.Unlock()
	if fresh || !c.limit.Allow() {
		return
	}
	select {
	case c.pingBack <- src:
	default:
	}
}

// heardFrom records a reply from addr to one of this node's queries.
func (c *citizen) heardFrom(addr netip.AddrPort) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.dead, addr)
	if roomFor(c.heard, addr, func(t time.Time) time.Time { return t }, heardFresh, now) {
		c.heard[addr] = now
	}
}

// maxTracked bounds each of the citizen's address maps.
const maxTracked = 4096

// roomFor reports whether m, bounded at maxTracked addresses, can take
// key, dropping the entries whose time (at) is ttl old when it is full.
func roomFor[V any](m map[netip.AddrPort]V, key netip.AddrPort, at func(V) time.Time, ttl time.Duration, now time.Time) bool {
	if _, ok := m[key]; ok || len(m) < maxTracked {
		return true
	}
	for a, v := range m {
		if now.Sub(at(v)) >= ttl {
			delete(m, a)
		}
	}
	return len(m) < maxTracked
}

func (c *citizen) recentlyHeard(addr netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.heard[addr]
	return ok && time.Since(t) < heardFresh
}

// pingBackLoop pings the nodes that queried this one.
func (d *Node) pingBackLoop() {
	defer d.wg.Done()
	sem := make(chan struct{}, 8)
	for {
		select {
		case <-d.ctx.Done():
			return
		case addr := <-d.citizen.pingBack:
			if !d.goLimited(sem, func() {
				ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
				defer cancel()
				if d.AddNode(ctx, addr) == nil {
					d.pingedBack.Add(1)
				}
			}) {
				return
			}
		}
	}
}

// goLimited runs f in one of the node's goroutines once sem has room; it
// returns false, without running f, if the node closes first.
func (d *Node) goLimited(sem chan struct{}, f func()) bool {
	select {
	case sem <- struct{}{}:
	case <-d.ctx.Done():
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-sem }()
		f()
	}()
	return true
}

// maintainLoop keeps the routing table fresh.
func (d *Node) maintainLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.Maintain)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		d.maintain(d.ctx)
	}
}

// maintain pings the nodes not heard from lately and refreshes the table
// around this node's ID and a random one.
func (d *Node) maintain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, ni := range d.srv.Nodes() {
		addr := ni.Addr.ToNodeAddrPort().AddrPort
		if !addr.IsValid() || d.citizen.recentlyHeard(addr) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = d.AddNode(ctx, addr)
		}()
	}
	wg.Wait()
	if d.srv.NumNodes() == 0 {
		// Reaching no one (UDP blocked, no network): try the bootstrap
		// nodes again, a few packets, so that the node rejoins on its own
		// once the network lets it.
		_ = d.Bootstrap(ctx)
		return
	}
	_ = d.findNode(ctx, d.srv.ID())
	var random [20]byte
	_, _ = rand.Read(random[:])
	_ = d.findNode(ctx, random)
	d.maintained.Add(1)
}

// peerStore is a bounded peer_store.Interface: at most 2048 info hashes
// with at most 32 peers each, forgotten 30 min after their last announce.
type peerStore struct {
	mu    sync.Mutex
	peers map[peer_store.InfoHash]map[string]storedPeer
}

type storedPeer struct {
	addr krpc.NodeAddr
	at   time.Time
}

const (
	maxInfoHashes   = 2048
	maxPeersPerHash = 32
	peerTTL         = 30 * time.Minute
)

func (s *peerStore) AddPeer(ih peer_store.InfoHash, a krpc.NodeAddr) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers == nil {
		s.peers = make(map[peer_store.InfoHash]map[string]storedPeer)
	}
	m := s.peers[ih]
	if m == nil {
		if len(s.peers) >= maxInfoHashes {
			s.expire(now)
			if len(s.peers) >= maxInfoHashes {
				return
			}
		}
		m = make(map[string]storedPeer)
		s.peers[ih] = m
	}
	key := a.String()
	if _, ok := m[key]; !ok && len(m) >= maxPeersPerHash {
		oldest := ""
		for k, p := range m {
			if oldest == "" || p.at.Before(m[oldest].at) {
				oldest = k
			}
		}
		delete(m, oldest)
	}
	m[key] = storedPeer{addr: a, at: now}
}

func (s *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []krpc.NodeAddr
	for k, p := range s.peers[ih] {
		if now.Sub(p.at) > peerTTL {
			delete(s.peers[ih], k)
			continue
		}
		out = append(out, p.addr)
	}
	return out
}

func (s *peerStore) expire(now time.Time) {
	for ih, m := range s.peers {
		for k, p := range m {
			if now.Sub(p.at) > peerTTL {
				delete(m, k)
			}
		}
		if len(m) == 0 {
			delete(s.peers, ih)
		}
	}
}
