package dht

import (
	"context"
	"crypto/sha1"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
)

// The storer cache. A mailbox is read again and again at the same
// target, and the nodes that store it (the K closest nodes that answer)
// change only with churn. So the first get or put of a target runs a
// traversal and keeps the closest nodes that answered; later gets ask the
// closest few of them directly (getFrom: cacheAsk packets instead of a
// traversal's tens), later puts ask all of them for a token and put there.
// The cache of a target is dropped, and the next operation traverses
// again, when none of its nodes answers or when its time is up, so nodes
// that join closer to the target are found. That time starts at
// fullStorerTTL (1 min), or minStorerTTL (5 s) when fewer than K nodes
// answered, and doubles each time a traversal finds the same nodes again,
// up to Config.StorerRefresh (default 30 min); a traversal that finds
// other nodes starts it again. A young network (a routing table still
// filling, nodes joining) is looked at again within seconds, a settled
// one every half hour.
//
// Fewer than K storers means the traversal met every node it could reach:
// a small network (one "peerdrop dht-node" and its devices). There, a
// traversal can find other nodes only after this node's routing table
// changed, so past minStorerTTL such a set stays trusted, up to
// StorerRefresh, for as long as the table holds the same number of nodes.
// An idle device on a small DHT then looks its contacts' mailboxes up
// once, not again every few seconds, and its cost does not grow with its
// contacts.
const (
	cacheAsk      = 3 // nodes a cached get asks
	minStorerTTL  = 5 * time.Second
	fullStorerTTL = time.Minute
	maxCached     = 4096 // targets in the cache
	storersPerKey = 8    // K
)

type storerCache struct {
	mu    sync.Mutex
	ttl   time.Duration // the longest; < 0: no cache
	table func() int    // the number of nodes in the routing table
	m     map[bep44.Target]storerSet
}

// storerSet is the closest nodes that answered, nearest first.
type storerSet struct {
	nodes []krpc.NodeInfo
	found time.Time
	ttl   time.Duration
	table int // routing table size when found
}

// newStorerCache returns a cache whose sets live up to ttl; table reports
// the routing table's size (see the small-network rule above).
func newStorerCache(ttl time.Duration, table func() int) *storerCache {
	return &storerCache{ttl: ttl, table: table, m: make(map[bep44.Target]storerSet)}
}

// nodes returns the cached storers of target, or nil.
func (c *storerCache) nodes(target bep44.Target) []krpc.NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[target]
	if !ok || c.ttl < 0 {
		return nil
	}
	age := time.Since(s.found)
	if age <= s.ttl || (len(s.nodes) < storersPerKey && age <= c.ttl && c.table() == s.table) {
		return s.nodes
	}
	return nil // kept (with its ttl) until the next traversal replaces it
}

// peek returns the storers last found for target, however old.
func (c *storerCache) peek(target bep44.Target) ([]krpc.NodeInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[target]
	return s.nodes, ok
}

// closest returns the closest nodes that answered a traversal.
func closest(op *traversal.Operation) []krpc.NodeInfo {
	var nodes []krpc.NodeInfo
	op.Closest().Range(func(e k_nearest_nodes.Elem) {
		if len(nodes) < storersPerKey {
			nodes = append(nodes, krpc.NodeInfo{ID: e.ID, Addr: nodeAddr(e.Addr.AddrPort)})
		}
	})
	return nodes
}

// keep records the closest nodes that answered a traversal.
func (c *storerCache) keep(target bep44.Target, nodes []krpc.NodeInfo) {
	if len(nodes) == 0 || c.ttl < 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.m[target]
	if !ok && len(c.m) >= maxCached {
		for t, s := range c.m {
			if now.Sub(s.found) > s.ttl || len(c.m) >= maxCached {
				delete(c.m, t)
			}
		}
	}
	ttl := min(fullStorerTTL, c.ttl)
	if len(nodes) < storersPerKey {
		ttl = min(minStorerTTL, c.ttl) // a young network, or a small one
	}
	if ok && sameNodes(old.nodes, nodes) {
		ttl = min(2*old.ttl, c.ttl)
	}
	c.m[target] = storerSet{nodes: nodes, found: now, ttl: ttl, table: c.table()}
}

// forget drops the storers of target: none of them answered.
func (c *storerCache) forget(target bep44.Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, target)
}

func sameNodes(a, b []krpc.NodeInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}

// getFrom asks nodes for the item at target in parallel and returns the
// highest valid seq, whether any held one, and how many nodes answered.
// Each reply's token is stored in tokens[i] if tokens is not nil. Like a
// traversal, it waits no longer than quiet after a reply for the nodes
// still silent, and counts those as timed out (see traverse.go).
func (d *Node) getFrom(ctx context.Context, nodes []krpc.NodeInfo, target bep44.Target, salt []byte, tokens []string) (getResult, bool, int) {
	var (
		mu      sync.Mutex
		found   bool
		r       getResult
		replied atomic.Int64
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan struct{}, 1)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ap := n.Addr.ToNodeAddrPort().AddrPort
			res := d.srv.Get(ctx, anadht.NewAddr(n.Addr.UDP()), target, nil, anadht.QueryRateLimiting{})
			if !d.citizen.answered(ap, res.ToError(), start) {
				return
			}
			replied.Add(1)
			select {
			case first <- struct{}{}:
			default:
			}
			rep := res.Reply.R
			if rep == nil {
				return
			}
			if tokens != nil && rep.Token != nil {
				tokens[i] = *rep.Token
			}
			if got, ok := validItem(rep, target, salt); ok {
				mu.Lock()
				if !found || got.seq > r.seq {
					found, r = true, got
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-first:
		select {
		case <-done:
		case <-time.After(quiet):
			cancel()
			<-done
		}
	case <-ctx.Done():
		<-done
	}
	return r, found, int(replied.Load())
}

// live returns up to n of nodes that are not taken as gone.
func (d *Node) live(nodes []krpc.NodeInfo, n int) []krpc.NodeInfo {
	var out []krpc.NodeInfo
	for _, x := range nodes {
		if len(out) < n && !d.citizen.isDead(x.Addr.ToNodeAddrPort().AddrPort) {
			out = append(out, x)
		}
	}
	return out
}

// findStorers runs a get traversal towards target for its closest nodes
// alone, and caches them.
func (d *Node) findStorers(ctx context.Context, target bep44.Target) []krpc.NodeInfo {
	var replies atomic.Int64
	op, err := d.traverse(ctx, target, 3, func(ctx context.Context, addr krpc.NodeAddr) (traversal.QueryResult, error) {
		res := d.srv.Get(ctx, anadht.NewAddr(addr.UDP()), target, nil, anadht.QueryRateLimiting{})
		if res.ToError() == nil {
			replies.Add(1)
		}
		return res.TraversalQueryResult(addr), res.ToError()
	}, func() bool { return replies.Load() >= storersPerKey })
	if err != nil || ctx.Err() != nil {
		return nil
	}
	nodes := closest(op)
	d.storers.keep(target, nodes)
	return nodes
}

// validItem returns the mutable item in a get reply if it is for target
// and its signature holds.
func validItem(rep *krpc.Return, target bep44.Target, salt []byte) (getResult, bool) {
	if rep.Seq == nil || rep.V == nil || sha1.Sum(append(rep.K[:], salt...)) != target ||
		!bep44.Verify(rep.K[:], salt, *rep.Seq, rep.V, rep.Sig[:]) {
		return getResult{}, false
	}
	return getResult{seq: *rep.Seq, v: append([]byte(nil), rep.V...), sig: rep.Sig}, true
}

func nodeAddr(ap netip.AddrPort) krpc.NodeAddr {
	var a krpc.NodeAddr
	a.FromAddrPort(ap)
	return a
}
