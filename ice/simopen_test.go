package ice

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun"
)

// fakeNATSTUN is a STUN server over TCP that answers each Binding with the
// address it saw moved to another loopback IP (127.0.0.2, same port), as a
// NAT that keeps ports would map it. seen records the source ports.
type fakeNATSTUN struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen []int
}

func startFakeNATSTUN(t *testing.T) *fakeNATSTUN {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNATSTUN{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				var hdr [stunHeaderSize]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
				if _, err := io.ReadFull(c, body); err != nil {
					return
				}
				req := &stun.Message{Raw: append(hdr[:], body...)}
				if req.Decode() != nil {
					return
				}
				from := c.RemoteAddr().(*net.TCPAddr)
				f.mu.Lock()
				f.seen = append(f.seen, from.Port)
				f.mu.Unlock()
				res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
					&stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 2), Port: from.Port}, stun.Fingerprint)
				if err == nil {
					_, _ = c.Write(res.Raw)
				}
				// Like coturn, wait for the client to close first (the
				// TIME-WAIT state is then on its side).
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeNATSTUN) url() string { return "stun:" + f.ln.Addr().String() }

// TestSimultaneousOpen: each side learns its listener's "public" address
// from a STUN Binding sent from the listener's own port, offers it as a
// passive and a "so" candidate, and, with nothing but the peer's "so"
// candidates to go on, both dial from their listener's port and connect:
// the path is reported as simultaneous open and carries data.
func TestSimultaneousOpen(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT on this OS: no simultaneous open")
	}
	if c, err := net.Dial("tcp", "127.0.0.2:9"); err != nil && !isRefused(err) {
		t.Skipf("127.0.0.2 is not on loopback: %v", err)
	} else if c != nil {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := startFakeNATSTUN(t)
	cfg := func() *Config {
		c := testConfig(netip.MustParseAddrPort("0.0.0.0:0"))
		c.Servers = []Server{{URL: srv.url()}}
		c.Mode = ModeDirectOnly
		return c
	}
	a, b := newTestAgent(t, cfg()), newTestAgent(t, cfg())
	onlySO := func(d *Description) {
		var keep []Candidate
		for _, c := range d.Candidates {
			if c.TCPType == SimultaneousOpen {
				keep = append(keep, c)
			}
		}
		d.Candidates = keep
	}
	var offered [2][]Candidate
	sa, sb := connectPair(t, ctx, a, b, true, false, func(toA, toB *Description) {
		offered[0], offered[1] = toA.Candidates, toB.Candidates
		onlySO(toA)
		onlySO(toB)
	})
	for i, ag := range []*Agent{b, a} {
		port := ag.Addrs()[0].Port()
		var so, passive bool
		for _, c := range offered[i] {
			if c.Type != ServerReflexive || c.Addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port) {
				continue
			}
			so = so || c.TCPType == SimultaneousOpen && c.Related.Port() == port
			passive = passive || c.TCPType == Passive
		}
		if !so || !passive {
			t.Fatalf("the listener on port %d is not offered as srflx so and passive: %v", port, offered[i])
		}
	}
	if sa.err != nil || sb.err != nil {
		t.Fatalf("connect: %v / %v", sa.err, sb.err)
	}
	selA, selB := sa.conn.Selected(), sb.conn.Selected()
	t.Logf("A: %s %v→%v in %v; B: %s %v→%v in %v", selA.Link, selA.LocalAddr, selA.RemoteAddr, selA.Elapsed, selB.Link, selB.LocalAddr, selB.RemoteAddr, selB.Elapsed)
	if selA.Link != LinkSimultaneousOpen || selB.Link != LinkSimultaneousOpen {
		t.Fatalf("links %q / %q, want %q on both sides", selA.Link, selB.Link, LinkSimultaneousOpen)
	}
	for _, s := range []struct {
		sel Selected
		ag  *Agent
	}{{selA, a}, {selB, b}} {
		if s.sel.LocalAddr.Port() != s.ag.Addrs()[0].Port() {
			t.Fatalf("the path's local port %d is not the listener's %d", s.sel.LocalAddr.Port(), s.ag.Addrs()[0].Port())
		}
	}
	exchange(t, sa.conn, sb.conn, 1<<16)
	exchange(t, sb.conn, sa.conn, 1<<16)
}

// TestListenerReflexiveAgain: every session learns its listener's public
// address again, from the same port to the same server: the STUN
// connection of the previous one must not block the port (a TIME-WAIT
// 4-tuple would make the next connect fail for a minute).
func TestListenerReflexiveAgain(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT on this OS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := startFakeNATSTUN(t)
	c := testConfig(netip.MustParseAddrPort("0.0.0.0:0"))
	c.Servers = []Server{{URL: srv.url()}}
	a := newTestAgent(t, c)
	for i := 0; i < 3; i++ {
		s, err := a.NewSession(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		var so bool
		for _, c := range s.Description().Candidates {
			so = so || c.TCPType == SimultaneousOpen
		}
		s.Close()
		if !so {
			t.Fatalf("session %d has no so candidate; server errors %v", i+1, s.ServerErrors())
		}
	}
}

// TestNoSimultaneousOpen: with the option off, no socket shares the
// listener's port: neither a "so" candidate nor the listener's reflexive
// address is offered (the usual reflexive active candidate still is).
func TestNoSimultaneousOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := startFakeNATSTUN(t)
	c := testConfig(netip.MustParseAddrPort("0.0.0.0:0"))
	c.Servers = []Server{{URL: srv.url()}}
	c.NoSimultaneousOpen = true
	a := newTestAgent(t, c)
	s, err := a.NewSession(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var active bool
	for _, c := range s.Description().Candidates {
		if c.TCPType == SimultaneousOpen || c.Type == ServerReflexive && c.TCPType == Passive {
			t.Fatalf("%v offered with NoSimultaneousOpen", c)
		}
		active = active || c.Type == ServerReflexive && c.TCPType == Active
	}
	if !active {
		t.Fatalf("no reflexive active candidate: %v", s.Description().Candidates)
	}
}

// TestSimultaneousOpenBounds: a peer's description cannot make a device
// dial without bound: "so" pairs per session, dialers per target address
// and in all are capped, and each dials at most once per soPace.
func TestSimultaneousOpenBounds(t *testing.T) {
	a := newTestAgent(t, testConfig())
	target := netip.MustParseAddr("192.0.2.1")
	n := 0
	for a.soAcquire(target) {
		n++
	}
	if n != soPerTarget {
		t.Fatalf("%d dialers to one address, want %d", n, soPerTarget)
	}
	for i := 0; i < n; i++ {
		a.soRelease(target)
	}
	total := 0
	for i := 0; i < 2*soTotal; i++ {
		if a.soAcquire(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})) {
			total++
		}
	}
	if total != soTotal {
		t.Fatalf("%d dialers in all, want %d", total, soTotal)
	}
	for i := 0; i < 2*soTotal; i++ {
		if ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}); a.soDials[ip] > 0 {
			a.soRelease(ip)
		}
	}

	// A description with 32 "so" candidates yields soPathsPerSession pairs.
	s := newSession(a, true)
	c := &checker{s: s}
	local := []Candidate{{Type: ServerReflexive, TCPType: SimultaneousOpen, Addr: netip.MustParseAddrPort("198.51.100.1:4000"), Related: a.Addrs()[0]}}
	for i := 0; i < MaxCandidates; i++ {
		c.remote.Candidates = append(c.remote.Candidates, Candidate{Foundation: "1", Priority: 1, Type: ServerReflexive, TCPType: SimultaneousOpen,
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5000)})
	}
	if got := len(c.soPaths(local)); got != soPathsPerSession {
		t.Fatalf("%d so paths from %d candidates, want %d", got, MaxCandidates, soPathsPerSession)
	}
}

func isRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && errors.Is(oe.Err, syscall.ECONNREFUSED)
}

// FuzzSOPaths: whatever a peer's description holds, the "so" pairs built
// from it are bounded, dial only addresses the peer offered as "so"
// candidates, and only of the local candidate's family.
func FuzzSOPaths(f *testing.F) {
	f.Add([]byte("a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\n" +
		"a=candidate:1 1 tcp 1694498559 203.0.113.7 4000 typ srflx raddr 10.0.0.2 rport 4000 tcptype so\n" +
		"a=candidate:2 1 tcp 1677721855 203.0.113.7 4000 typ srflx raddr 10.0.0.2 rport 4000 tcptype passive\n"))
	f.Add([]byte("a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\n" +
		"a=candidate:1 1 tcp 1 2001:db8::1 4000 typ srflx tcptype so\na=candidate:2 1 tcp 1 127.0.0.1 1 typ host tcptype so\n"))
	a, err := NewAgent(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	local := []Candidate{{Type: ServerReflexive, TCPType: SimultaneousOpen, Addr: netip.MustParseAddrPort("198.51.100.1:4000"), Related: a.Addrs()[0]}}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescription(data)
		if err != nil {
			return
		}
		c := &checker{s: newSession(a, true), remote: d}
		offered := map[netip.AddrPort]bool{}
		for _, rc := range d.Candidates {
			if rc.TCPType == SimultaneousOpen {
				offered[rc.Addr] = true
			}
		}
		ps := c.soPaths(local)
		if len(ps) > soPathsPerSession {
			t.Fatalf("%d so paths", len(ps))
		}
		for _, p := range ps {
			if !offered[p.target] || !p.target.Addr().Is4() || p.target.Port() == 0 || p.bind != a.Addrs()[0] {
				t.Fatalf("so path to %v from %v: not an offered IPv4 so candidate or not from the listener", p.target, p.bind)
			}
		}
	})
}
