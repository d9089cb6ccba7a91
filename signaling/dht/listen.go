package dht

import (
	"context"
	"crypto/sha1"
	"net"
	"net/netip"
	"sync"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/time/rate"

	"github.com/peerdrop/peerdrop/signaling"
)

// Listen and notify, a KRPC extension (as OpenDHT's listen is for Jami):
// a device that reads a mailbox again and again asks the nodes storing it
// to tell it of puts instead.
//
//	pd_listen  a: {id, v: <n × 20-byte targets, n ≤ 50>}
//	           r: {id, seq: <targets now held for the sender>}
//	pd_notify  a: {id, target, k, salt, seq, sig, v}   (a BEP 44 put's fields)
//	           r: {id}
//
// A node holds a subscription (source address, target) for listenTTL
// after its last pd_listen; at most maxPerSource targets per source
// address, maxPerTarget sources per target and maxSubs in all. When it
// stores a put (signature and seq checked by anacrolix) at a target with
// subscribers, it sends each a pd_notify with the item, at most notifyRate
// a second in all, and only to sources that answered one of its own
// queries lately (its ping back, see citizen.go), so a forged source
// address cannot turn it into a flooder of a third party; a source not
// heard lately is told it holds nothing (so it keeps polling) and pinged
// again. A new subscription to a target that holds an item is notified of
// it at once.
//
// The listening side (Node.Listen) subscribes each target at listenStorers of
// its cached storers (storers.go), those that store the most of its
// targets first (cover, in listener.go), every listenEvery (25 s,
// also keeping a NAT's UDP mapping open for the notifications), one
// pd_listen per node for all its targets. A reply without "seq" (a node
// without the extension: libtorrent answers unknown queries like
// find_node) or an error means no support, remembered for noListenFor. A
// target is Listening while a subscription at some node is live; until
// then, and at nodes without the extension, it is polled as before.
const (
	listenTTL     = 60 * time.Second
	listenEvery   = 25 * time.Second
	listenStorers = 2 // storers a target is subscribed at
	noListenFor   = 30 * time.Minute
	maxPerQuery   = 50
	maxPerSource  = 256
	maxPerTarget  = 8
	maxSubs       = 1 << 16
	notifyRate    = 200
)

// subs is the subscriptions a node holds for others.
type subs struct {
	mu        sync.Mutex
	byTarget  map[bep44.Target]map[netip.AddrPort]time.Time
	perSource map[netip.AddrPort]int
	total     int
}

func newSubs() *subs {
	return &subs{byTarget: make(map[bep44.Target]map[netip.AddrPort]time.Time), perSource: make(map[netip.AddrPort]int)}
}

// add subscribes src to target until exp; it reports whether src holds
// the subscription and whether it is new.
func (s *subs) add(src netip.AddrPort, target bep44.Target, exp time.Time) (held, added bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byTarget[target]
	if _, ok := m[src]; ok {
		m[src] = exp
		return true, false
	}
	if s.total >= maxSubs || s.perSource[src] >= maxPerSource || len(m) >= maxPerTarget {
		s.expire(time.Now())
		m = s.byTarget[target]
		if s.total >= maxSubs || s.perSource[src] >= maxPerSource || len(m) >= maxPerTarget {
			return false, false
		}
	}
	if m == nil {
		m = make(map[netip.AddrPort]time.Time)
		s.byTarget[target] = m
	}
	m[src] = exp
	s.perSource[src]++
	s.total++
	return true, true
}

func (s *subs) expire(now time.Time) {
	for t, m := range s.byTarget {
		for src, exp := range m {
			if now.After(exp) {
				s.dropLocked(t, src)
			}
		}
	}
}

func (s *subs) drop(target bep44.Target, src netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(target, src)
}

func (s *subs) dropLocked(target bep44.Target, src netip.AddrPort) {
	m := s.byTarget[target]
	if _, ok := m[src]; !ok {
		return
	}
	delete(m, src)
	if len(m) == 0 {
		delete(s.byTarget, target)
	}
	if s.perSource[src]--; s.perSource[src] <= 0 {
		delete(s.perSource, src)
	}
	s.total--
}

// of returns the live subscribers of target.
func (s *subs) of(target bep44.Target) []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []netip.AddrPort
	for src, exp := range s.byTarget[target] {
		if now.Before(exp) {
			out = append(out, src)
		}
	}
	return out
}

func (s *subs) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// notice is a pd_notify to send.
type notice struct {
	to   netip.AddrPort
	item *bep44.Item
}

// stored is called by the store after it kept a put (it must not block).
func (d *Node) stored(it *bep44.Item) {
	for _, src := range d.subs.of(it.Target()) {
		d.queueNotice(notice{src, it})
	}
	if v, ok := it.V.([]byte); ok {
		d.deliverOwn(it, v)
	} else if v, ok := it.V.(string); ok {
		d.deliverOwn(it, []byte(v))
	}
}

// deliverOwn hands a put this node stored to its own subscriptions: a
// node listens to its own store (on a small DHT, a device may be the
// only storer a put reached).
func (d *Node) deliverOwn(i *bep44.Item, v []byte) {
	it := signaling.Item{Key: i.K, Salt: append([]byte(nil), i.Salt...), Seq: i.Seq, Value: append([]byte(nil), v...), Sig: i.Sig}
	if d.listener.wants(it.Target()) {
		d.listener.deliver(it)
	}
}

func (d *Node) queueNotice(n notice) {
	select {
	case d.notices <- n:
	default:
		d.noticesDropped.Add(1)
	}
}

// onListen answers a pd_listen (from the query hook: it must not block).
func (d *Node) onListen(m *krpc.Msg, src netip.AddrPort) {
	raw, _ := m.A.V.(string)
	if !src.IsValid() || len(raw) == 0 || len(raw)%20 != 0 || len(raw)/20 > maxPerQuery {
		d.dropped.Add(1)
		d.reply(src, krpc.Msg{T: m.T, Y: krpc.YError, E: &krpc.Error{Code: krpc.ErrorCodeProtocolError, Msg: "bad pd_listen"}})
		return
	}
	// Notices go only to sources heard lately (notifyLoop). One that is
	// not (its ping-back was lost) is told it holds nothing, so that it
	// keeps polling, and is pinged again: its next pd_listen holds.
	heard := d.citizen.recentlyHeard(src)
	if !heard {
		d.citizen.pingBackAfter(src, listenPingEvery)
	}
	exp := time.Now().Add(listenTTL)
	var n int64
	for i := 0; i < len(raw); i += 20 {
		var t bep44.Target
		copy(t[:], raw[i:i+20])
		held, added := d.subs.add(src, t, exp)
		if held && heard {
			n++
		}
		if added {
			if it, err := d.store.Get(t); err == nil {
				d.queueNotice(notice{src, it})
			}
		}
	}
	d.reply(src, krpc.Msg{T: m.T, Y: krpc.YResponse, R: &krpc.Return{ID: d.id, Bep44Return: krpc.Bep44Return{Seq: &n}}})
}

// onNotify takes a pd_notify for a target this node listens to (from the
// query hook: it must not block).
func (d *Node) onNotify(m *krpc.Msg, src netip.AddrPort) {
	a := m.A
	bv, err := bencode.Marshal(a.V)
	ok := err == nil && a.Seq != nil && len(bv) <= 1000 && len(a.Salt) <= 64 &&
		sha1.Sum(append(a.K[:], a.Salt...)) == a.Target && d.listener.wants(a.Target) &&
		bep44.Verify(a.K[:], a.Salt, *a.Seq, bv, a.Sig[:])
	var v []byte
	if ok {
		ok = bencode.Unmarshal(bv, &v) == nil
	}
	if !ok {
		d.dropped.Add(1)
		d.reply(src, krpc.Msg{T: m.T, Y: krpc.YError, E: &krpc.Error{Code: krpc.ErrorCodeProtocolError, Msg: "bad pd_notify"}})
		return
	}
	d.reply(src, krpc.Msg{T: m.T, Y: krpc.YResponse, R: &krpc.Return{ID: d.id}})
	it := signaling.Item{Key: a.K, Salt: append([]byte(nil), a.Salt...), Seq: *a.Seq, Value: v, Sig: a.Sig}
	if d.listener.deliver(it) {
		d.notified.Add(1)
	} else {
		d.noticesDropped.Add(1)
	}
}

// reply queues a message for the reply loop (the query hook runs under
// the server's lock and must not write itself).
func (d *Node) reply(to netip.AddrPort, m krpc.Msg) {
	select {
	case d.replies <- outMsg{to, m}:
	default:
	}
}

type outMsg struct {
	to netip.AddrPort
	m  krpc.Msg
}

// replyLoop writes queued replies.
func (d *Node) replyLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case r := <-d.replies:
			if b, err := bencode.Marshal(r.m); err == nil {
				_, _ = d.conn.WriteTo(b, net.UDPAddrFromAddrPort(r.to))
			}
		}
	}
}

// notifyLoop sends queued notices, paced, a few at a time.
func (d *Node) notifyLoop() {
	defer d.wg.Done()
	limit := rate.NewLimiter(notifyRate, notifyRate)
	sem := make(chan struct{}, 16)
	for {
		var n notice
		select {
		case <-d.ctx.Done():
			return
		case n = <-d.notices:
		}
		if !d.citizen.recentlyHeard(n.to) || limit.Wait(d.ctx) != nil {
			continue
		}
		if !d.goLimited(sem, func() {
			ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
			defer cancel()
			t := n.item.Target()
			seq := n.item.Seq
			res := d.srv.Query(ctx, anadht.NewAddr(net.UDPAddrFromAddrPort(n.to)), "pd_notify", anadht.QueryInput{MsgArgs: krpc.MsgArgs{
				Target: t, K: n.item.K, Salt: n.item.Salt, Seq: &seq, Sig: n.item.Sig, V: n.item.V,
			}})
			if res.ToError() != nil {
				d.subs.drop(t, n.to) // gone or no longer listening
				return
			}
			d.notifySent.Add(1)
		}) {
			return
		}
	}
}
