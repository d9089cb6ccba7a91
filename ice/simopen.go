package ice

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// TCP simultaneous open (RFC 6544 "so" candidates).
//
// Two hosts behind NATs that filter unsolicited inbound connections can
// still connect over TCP if each sends a SYN to the other's public address
// from the port the other knows: each SYN opens the sender's NAT for the
// other's, and whichever arrives once both are open forms the connection,
// either as a true simultaneous open (both sockets in SYN-SENT) or as a
// SYN accepted by the peer's listener on that port. So:
//
//   - Every passive listener is opened with SO_REUSEADDR and SO_REUSEPORT,
//     so its port can also dial out while it keeps listening (a SYN that
//     arrives early is then accepted, not answered with a reset).
//   - While gathering, a STUN Binding over TCP is sent to every configured
//     STUN and TURN server from each listener's own port; the mapping the
//     server saw is offered twice, as a server-reflexive passive candidate
//     (reachable at once behind a full-cone NAT) and as a server-reflexive
//     "so" candidate whose related address is the listener's address.
//   - Connect pairs our "so" candidates with the peer's: both sides dial the
//     other's public address from their listener's port for soWindow
//     (twice CheckTimeout: the two sides start up to a few seconds apart
//     through signaling), again every soPace after a reset. A connection the listener
//     accepts from the peer meanwhile is an incoming path like any other;
//     once it exists our own attempts find the 4-tuple taken and stop.
//
// A peer's description must not make a device a SYN flooder: "so" dials go
// only to the "so" candidates the peer described (at most soPathsPerSession
// pairs), at most soPerTarget sessions dial one address at a time and
// soTotal in all, each at most soWindow/soPace+1 times.
const (
	soPace            = 400 * time.Millisecond
	soPathsPerSession = 8
	soPerTarget       = 4
	soTotal           = 64
)

// soPathPrefix starts the name of every "so" path (PathError.Path).
const soPathPrefix = "so "

var errSOBusy = errors.New("too many simultaneous-open dials to this address")

// soWindow is how long one "so" path keeps dialing: twice the check
// timeout, since the side that answered starts its dials before the
// asker has the answer (under load and on slow links, seconds before).
func soWindow(cfg *Config) time.Duration { return 2 * cfg.CheckTimeout }

// soAcquire reserves a simultaneous-open dialer towards target.
func (a *Agent) soAcquire(target netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.soDials[target] >= soPerTarget || a.soCount >= soTotal {
		return false
	}
	a.soDials[target]++
	a.soCount++
	return true
}

func (a *Agent) soRelease(target netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.soDials[target]--; a.soDials[target] <= 0 {
		delete(a.soDials, target)
	}
	a.soCount--
}

// listenerFor returns the listener address a "so" candidate's base uses:
// the listener bound to base exactly, or the unspecified one of its family
// on its port.
func (a *Agent) listenerFor(base netip.AddrPort) (netip.AddrPort, bool) {
	for _, l := range a.Addrs() {
		if l.Port() == base.Port() && (l.Addr() == base.Addr() || l.Addr().IsUnspecified() && l.Addr().Is6() == base.Addr().Is6()) {
			return l, true
		}
	}
	return netip.AddrPort{}, false
}

// dialFrom opens a TCP connection to target from local, a listener's port.
func dialFrom(ctx context.Context, cfg *Config, local netip.AddrPort, target string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: cfg.control(true)}
	return d.DialContext(ctx, "tcp", target)
}

// listenerReflexive learns the public address of the listener's port ln
// from srv: a STUN Binding sent from a socket bound to ln. It returns the
// mapped address and the base (the socket's local address). Servers of
// the other address family are skipped. The connection is closed with a
// reset (SO_LINGER 0): a normal close would leave its 4-tuple in
// TIME-WAIT on our side (servers wait for the client to close), and the
// next session's Binding from the same port to the same server would
// fail for a minute.
func listenerReflexive(ctx context.Context, cfg *Config, srv server, ln netip.AddrPort) (mapped, base netip.AddrPort, err error) {
	return stunBindingVia(ctx, cfg, srv, func(ctx context.Context, ip netip.Addr, addr string) (net.Conn, error) {
		if ip.Is6() != ln.Addr().Is6() {
			return nil, errOtherFamily
		}
		c, err := dialFrom(ctx, cfg, ln, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c, err
	})
}

var errOtherFamily = errors.New("server of the other address family")

// dialSO is the dial of a "so" path: from the listener's port to the
// peer's public address until soWindow is over. One attempt lasts as long
// as the kernel retransmits its SYN: the peer's SYN, once it passes our
// NAT (opened by ours), meets our socket in SYN-SENT and the simultaneous
// open completes; ending an attempt early could close a connection just
// formed (the peer would see it reset, and the 4-tuple would be in
// TIME-WAIT for the next attempt). An attempt that fails at once (a reset
// from the peer's NAT, no route) is made again after soPace.
func (p *path) dialSO(ctx context.Context) (net.Conn, error) {
	a, cfg := p.c.s.a, p.c.s.cfg
	if !a.soAcquire(p.target.Addr()) {
		return nil, errSOBusy
	}
	defer a.soRelease(p.target.Addr())
	ctx, cancel := context.WithTimeout(ctx, soWindow(cfg))
	defer cancel()
	var last error
	for {
		start := time.Now()
		conn, err := dialFrom(ctx, cfg, p.bind, p.target.String())
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			if last == nil {
				last = ctx.Err()
			}
			return nil, last
		}
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			// The 4-tuple exists: our listener accepted the peer's SYN, and
			// that connection is an incoming path already.
			return nil, err
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			last = err // a refusal or an unreachable network says more than a timeout
		}
		select {
		case <-ctx.Done():
		case <-time.After(soPace - time.Since(start)):
		}
	}
}
