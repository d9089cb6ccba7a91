package dht

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// LAN discovery. A node with LAN discovery on sends a beacon to a
// multicast group on every up, multicast-capable, non-loopback interface
// when it starts and every Interval, and listens on the group. A beacon
// from a node it does not know makes it ping that node (the source address
// of the packet, never an address from the payload, with the port from
// the payload), which puts each in the other's routing table; it then
// answers with its own beacon (at most once a second) so the newcomer
// learns it at once, and bootstraps if its table was nearly empty.
//
// Beacon, 28 bytes, sent with TTL / hop limit 1:
//
//	0  6  "PDLAN1"
//	6 20  DHT node ID
//	26 2  DHT UDP port, big endian
//
// Beacons are not authenticated: anyone on the LAN can make nodes ping an
// address on the LAN. That costs one DHT ping per node per source address
// per MinRepeat, and at most PingRate pings a second per node.
const (
	lanMagic    = "PDLAN1"
	beaconSize  = len(lanMagic) + 20 + 2
	lanMaxAddrs = 256 // sources remembered for MinRepeat
)

// Default groups: organization-local IPv4 scope and link-local IPv6 scope.
var (
	DefaultLANGroup4 = netip.MustParseAddrPort("239.255.80.68:6798")
	DefaultLANGroup6 = netip.MustParseAddrPort("[ff02::7064:6c61:6e31]:6798")
)

// LANStats counts LAN discovery.
type LANStats struct {
	BeaconsSent, BeaconsReceived, BeaconsDropped int64
	Pinged, NodesAdded                           int64
}

type lan struct {
	d      *Node
	cfg    LANConfig
	v6     bool
	group  *net.UDPAddr
	conn   net.PacketConn
	p4     *ipv4.PacketConn
	p6     *ipv6.PacketConn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	beacon []byte
	answer chan struct{}
	pings  chan netip.AddrPort

	mu     sync.Mutex
	joined map[int]bool
	seen   map[netip.Addr]time.Time

	sent, received, dropped, pinged, added atomic.Int64
}

func startLAN(d *Node, c LANConfig) (*lan, error) {
	v6 := d.isIPv6()
	c, err := c.withDefaults(v6)
	if err != nil {
		return nil, err
	}
	network, any := "udp4", "0.0.0.0"
	if v6 {
		network, any = "udp6", "::"
	}
	lc := net.ListenConfig{Control: reuseAddr}
	conn, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(any, fmt.Sprint(c.Group.Port())))
	if err != nil {
		return nil, fmt.Errorf("dht: LAN discovery: %w", err)
	}
	l := &lan{d: d, cfg: c, v6: v6, conn: conn, group: net.UDPAddrFromAddrPort(c.Group),
		answer: make(chan struct{}, 1), pings: make(chan netip.AddrPort, 16),
		joined: make(map[int]bool), seen: make(map[netip.Addr]time.Time)}
	if v6 {
		l.p6 = ipv6.NewPacketConn(conn)
		_ = l.p6.SetMulticastHopLimit(1)
		_ = l.p6.SetMulticastLoopback(true) // nodes on one host find each other
	} else {
		l.p4 = ipv4.NewPacketConn(conn)
		_ = l.p4.SetMulticastTTL(1)
		_ = l.p4.SetMulticastLoopback(true)
	}
	id := d.ID()
	l.beacon = append(append([]byte(lanMagic), id[:]...), byte(d.Addr().Port()>>8), byte(d.Addr().Port()))
	ifs, err := l.join()
	if err != nil {
		conn.Close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(3)
	go l.readLoop()
	go l.beaconLoop(ifs)
	go l.pingLoop()
	return l, nil
}

// join lists the usable interfaces and joins the group on new ones.
func (l *lan) join() ([]net.Interface, error) {
	all, err := l.cfg.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("dht: LAN discovery: interfaces: %w", err)
	}
	var use []net.Interface
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if !l.joined[ifi.Index] {
			if l.v6 {
				err = l.p6.JoinGroup(&ifi, l.group)
			} else {
				err = l.p4.JoinGroup(&ifi, l.group)
			}
			if err != nil {
				continue // no address of this family yet
			}
			l.joined[ifi.Index] = true
		}
		use = append(use, ifi)
	}
	return use, nil
}

func (l *lan) close() {
	l.cancel()
	l.conn.Close()
	l.wg.Wait()
}

func (l *lan) stats() LANStats {
	return LANStats{BeaconsSent: l.sent.Load(), BeaconsReceived: l.received.Load(), BeaconsDropped: l.dropped.Load(),
		Pinged: l.pinged.Load(), NodesAdded: l.added.Load()}
}

func (l *lan) send(ifs []net.Interface) {
	for _, ifi := range ifs {
		var err error
		if l.v6 {
			if err = l.p6.SetMulticastInterface(&ifi); err == nil {
				_, err = l.p6.WriteTo(l.beacon, nil, l.group)
			}
		} else {
			if err = l.p4.SetMulticastInterface(&ifi); err == nil {
				_, err = l.p4.WriteTo(l.beacon, nil, l.group)
			}
		}
		if err == nil {
			l.sent.Add(1)
		} else {
			l.d.log.Debug("LAN beacon not sent", "interface", ifi.Name, "err", err)
		}
	}
}

func (l *lan) beaconLoop(ifs []net.Interface) {
	defer l.wg.Done()
	l.send(ifs)
	var lastAnswer time.Time
	for {
		jitter := time.Duration(rand.Int64N(int64(l.cfg.Interval) / 5))
		t := time.NewTimer(l.cfg.Interval - l.cfg.Interval/10 + jitter)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-l.answer:
			t.Stop()
			if time.Since(lastAnswer) < time.Second {
				continue
			}
			lastAnswer = time.Now()
		case <-t.C:
		}
		if fresh, err := l.join(); err == nil {
			ifs = fresh
		}
		l.send(ifs)
	}
}

func (l *lan) readLoop() {
	defer l.wg.Done()
	buf := make([]byte, 512)
	own := l.d.ID()
	for {
		n, src, err := l.conn.ReadFrom(buf)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		id, to, ok := parseBeacon(buf[:n], addrIP(src), l.v6)
		if id == own {
			continue // our own beacon, looped back
		}
		if !ok {
			l.dropped.Add(1)
			continue
		}
		l.received.Add(1)
		if !l.fresh(to.Addr()) {
			continue
		}
		select {
		case l.pings <- to:
		default:
			l.dropped.Add(1) // pinging falls behind: a flood
		}
	}
}

// parseBeacon checks a beacon from src and returns the sender's node ID and
// DHT address: src's IP with the beacon's port.
func parseBeacon(b []byte, src netip.AddrPort, v6 bool) (id [20]byte, to netip.AddrPort, ok bool) {
	if len(b) != beaconSize || !bytes.HasPrefix(b, []byte(lanMagic)) {
		return id, to, false
	}
	copy(id[:], b[6:26])
	port := binary.BigEndian.Uint16(b[26:])
	ip := src.Addr().Unmap()
	if port == 0 || !ip.IsValid() || ip.IsMulticast() || ip.IsUnspecified() || ip.Is6() != v6 {
		return id, to, false
	}
	return id, netip.AddrPortFrom(ip, port), true
}

// fresh reports whether ip may be pinged now, and remembers it.
func (l *lan) fresh(ip netip.Addr) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.seen[ip]; ok && now.Sub(t) < l.cfg.MinRepeat {
		return false
	}
	if len(l.seen) >= lanMaxAddrs {
		for a, t := range l.seen {
			if now.Sub(t) >= l.cfg.MinRepeat {
				delete(l.seen, a)
			}
		}
		if len(l.seen) >= lanMaxAddrs {
			return false
		}
	}
	l.seen[ip] = now
	return true
}

func (l *lan) pingLoop() {
	defer l.wg.Done()
	every := time.Duration(float64(time.Second) / l.cfg.PingRate)
	for {
		var to netip.AddrPort
		select {
		case <-l.ctx.Done():
			return
		case to = <-l.pings:
		}
		before := l.d.srv.NumNodes()
		l.pinged.Add(1)
		ctx, cancel := context.WithTimeout(l.ctx, 3*time.Second)
		err := l.d.AddNode(ctx, to)
		cancel()
		if err == nil {
			l.added.Add(1)
			select {
			case l.answer <- struct{}{}:
			default:
			}
			if before < 8 {
				bctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
				_ = l.d.Bootstrap(bctx)
				cancel()
			}
		} else {
			l.d.log.Debug("LAN node did not answer", "addr", to, "err", err)
		}
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// reuseAddr lets several nodes of one host listen on the group port.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = setReuse(fd) })
	if err != nil {
		return err
	}
	return serr
}
