package dht

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"

	"github.com/peerdrop/peerdrop/signaling"
)

// The listening side of listen and notify (see listen.go).

// listener is what a node listens to: the union of its subscriptions'
// targets.
type listener struct {
	wake chan struct{}

	mu       sync.Mutex
	subs     map[*Subscription]bool
	until    map[bep44.Target]time.Time   // a subscription at a node is live until
	seen     map[bep44.Target]int64       // highest seq delivered
	noListen map[netip.AddrPort]time.Time // nodes without the extension
	unheld   bool                         // a node held fewer than asked: ask again soon
}

func newListener() *listener {
	return &listener{wake: make(chan struct{}, 1), subs: make(map[*Subscription]bool),
		until: make(map[bep44.Target]time.Time), seen: make(map[bep44.Target]int64), noListen: make(map[netip.AddrPort]time.Time)}
}

// Subscription is a set of targets whose puts a Node asks the storing
// nodes to notify (implements signaling.Subscription).
type Subscription struct {
	d       *Node
	updates chan signaling.Item
	targets map[bep44.Target]bool // guarded by the listener's mu
}

// Subscribe returns a subscription with no targets (implements
// signaling.Listener). With Config.NoListen its targets are never
// listened to: they are polled.
func (d *Node) Subscribe() signaling.Subscription {
	s := &Subscription{d: d, updates: make(chan signaling.Item, 64), targets: make(map[bep44.Target]bool)}
	d.listener.mu.Lock()
	d.listener.subs[s] = true
	d.listener.mu.Unlock()
	return s
}

// Set replaces the subscription's targets.
func (s *Subscription) Set(targets [][20]byte) {
	l := s.d.listener
	l.mu.Lock()
	changed := len(targets) != len(s.targets)
	next := make(map[bep44.Target]bool, len(targets))
	for _, t := range targets {
		next[t] = true
		changed = changed || !s.targets[t]
	}
	s.targets = next
	l.mu.Unlock()
	if changed && !s.d.cfg.NoListen {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Listening reports whether a node holds a live subscription for target:
// its puts are notified, it need not be polled often.
func (s *Subscription) Listening(target [20]byte) bool {
	l := s.d.listener
	l.mu.Lock()
	held, live := s.targets[target], time.Now().Before(l.until[target])
	l.mu.Unlock()
	return held && (live || s.d.cfg.Serve && s.d.storesOwn(target))
}

// storesOwn reports whether this node is one of the K nodes closest to
// target that others put at: it knows no other node, or fewer than K
// storers of target, or it is closer to target than the farthest of them.
// Puts there reach its own store, which a Serve node listens to.
func (d *Node) storesOwn(target bep44.Target) bool {
	if d.ro.on() {
		return false
	}
	if d.srv.NumNodes() == 0 {
		return true
	}
	nodes, ok := d.storers.peek(target)
	if !ok {
		return false
	}
	if len(nodes) < storersPerKey {
		return true
	}
	t := int160.FromByteArray(target)
	self, far := int160.FromByteArray(d.srv.ID()), int160.FromByteArray(nodes[len(nodes)-1].ID)
	return int160.Distance(self, t).Cmp(int160.Distance(far, t)) < 0
}

// Updates delivers the verified items notified for the targets.
func (s *Subscription) Updates() <-chan signaling.Item { return s.updates }

// Close ends the subscription.
func (s *Subscription) Close() {
	l := s.d.listener
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, s)
}

// wants reports whether a subscription has target.
func (l *listener) wants(t bep44.Target) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		if s.targets[t] {
			return true
		}
	}
	return false
}

// deliver hands a notified item to the subscriptions that have its
// target, unless an item with the same or a higher seq was (each storer
// notifies the same put); it reports whether any took it.
func (l *listener) deliver(it signaling.Item) bool {
	t := it.Target()
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq, ok := l.seen[t]; ok && it.Seq <= seq {
		return true
	}
	l.seen[t] = it.Seq
	took := false
	for s := range l.subs {
		if s.targets[t] {
			select {
			case s.updates <- it:
				took = true
			default:
			}
		}
	}
	return took
}

// listenLoop subscribes the listened targets at their storers every
// listenEvery, and at once when the set changes.
// A round that left targets without known storers (the poll that finds
// them has not run yet) is tried again within a second, or, while the
// routing table is empty, after 1, 2, 4, … up to listenEvery seconds.
func (d *Node) listenLoop() {
	defer d.wg.Done()
	t := time.NewTimer(listenEvery)
	defer t.Stop()
	retry := time.Second
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		case <-d.listener.wake:
		}
		next := listenEvery
		unknown := d.subscribe()
		d.listener.mu.Lock()
		unheld := d.listener.unheld
		d.listener.unheld = false
		d.listener.mu.Unlock()
		if unknown > 0 {
			// Storers not found: again soon, but a node that reaches no
			// one (UDP blocked) backs off to listenEvery.
			next = retry
			if d.srv.NumNodes() == 0 {
				retry = min(2*retry, listenEvery)
			}
		} else {
			retry = time.Second
		}
		if unheld {
			// A node had not heard from this one lately and pings it
			// first (onListen): ask again once that ping is answered.
			next = min(next, listenPingEvery+time.Second)
		}
		t.Reset(next)
	}
}

// subscribe sends one round of pd_listen: each target to listenStorers of its
// live storers that are not known to lack the extension (see cover).
// A target whose storers' time is up is looked up again first (a listened
// target is not polled, so no get does it). It returns how many targets
// have no storers.
func (d *Node) subscribe() (unknown int) {
	l := d.listener
	now := time.Now()
	if d.cfg.NoListen {
		return 0
	}
	l.mu.Lock()
	all := make(map[bep44.Target]bool)
	for s := range l.subs {
		for t := range s.targets {
			all[t] = true
		}
	}
	var targets []bep44.Target
	for t := range all {
		targets = append(targets, t)
	}
	for t := range l.until {
		if !all[t] {
			delete(l.until, t)
		}
	}
	for t := range l.seen {
		if !all[t] {
			delete(l.seen, t)
		}
	}
	for a, exp := range l.noListen {
		if now.After(exp) {
			delete(l.noListen, a)
		}
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	found := make([][]krpc.NodeInfo, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	empty := d.srv.NumNodes() == 0 // no lookups: they would only ask the bootstrap nodes, again and again
	for i, t := range targets {
		if found[i] = d.storers.nodes(t); found[i] != nil || empty {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			found[i] = d.findStorers(ctx, t)
		}()
	}
	wg.Wait()
	cands := make([][]netip.AddrPort, len(targets))
	l.mu.Lock()
	for i := range targets {
		storers := d.live(found[i], storersPerKey)
		if len(storers) == 0 {
			unknown++
		}
		for _, s := range storers {
			ap := s.Addr.ToNodeAddrPort().AddrPort
			if _, no := l.noListen[ap]; !no && ap != d.Addr() {
				cands[i] = append(cands[i], ap)
			}
		}
	}
	l.mu.Unlock()
	per := cover(targets, cands, listenStorers)
	for ap, ts := range per {
		for len(ts) > 0 {
			chunk := ts[:min(len(ts), maxPerQuery)]
			ts = ts[len(chunk):]
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d.listenAt(ctx, ap, chunk)
			}()
		}
	}
	wg.Wait()
	return unknown
}

// cover chooses where to subscribe each target: at listenStorers of its
// candidate storers, those that store the most of the listened targets
// first. A device with many contacts then keeps subscriptions at few
// nodes (each keep-alive round sends one pd_listen per node for up to
// maxPerQuery targets), instead of at cacheAsk random storers per target;
// on a DHT of N nodes its keep-alives are bounded by N, not by its
// contacts, and on its own small DHT they are the same for 1 or 100
// contacts.
func cover(targets []bep44.Target, cands [][]netip.AddrPort, n int) map[netip.AddrPort][]bep44.Target {
	stores := make(map[netip.AddrPort]int)
	for _, c := range cands {
		for _, ap := range c {
			stores[ap]++
		}
	}
	per := make(map[netip.AddrPort][]bep44.Target)
	for i, t := range targets {
		c := slices.Clone(cands[i])
		slices.SortStableFunc(c, func(a, b netip.AddrPort) int { return stores[b] - stores[a] })
		for _, ap := range c[:min(n, len(c))] {
			per[ap] = append(per[ap], t)
		}
	}
	return per
}

// listenAt sends one pd_listen and records the subscriptions it holds.
func (d *Node) listenAt(ctx context.Context, ap netip.AddrPort, ts []bep44.Target) {
	raw := make([]byte, 0, 20*len(ts))
	for _, t := range ts {
		raw = append(raw, t[:]...)
	}
	sent := time.Now()
	res := d.srv.Query(ctx, anadht.NewAddr(net.UDPAddrFromAddrPort(ap)), "pd_listen", anadht.QueryInput{MsgArgs: krpc.MsgArgs{V: string(raw)}})
	d.listens.Add(1)
	l := d.listener
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case res.Err != nil && ctx.Err() != nil:
	case res.Err != nil || res.Reply.R == nil || res.Reply.R.Seq == nil:
		if res.Reply.Y != "" { // it answered, without the extension
			l.noListen[ap] = time.Now().Add(noListenFor)
		}
	case *res.Reply.R.Seq >= int64(len(ts)):
		for _, t := range ts {
			if until := sent.Add(listenTTL - 5*time.Second); until.After(l.until[t]) {
				l.until[t] = until
			}
		}
	default:
		l.unheld = true
	}
}
