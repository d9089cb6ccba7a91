package natlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/internal/netns"
	"github.com/peerdrop/peerdrop/internal/testenv"
)

// bin is the peerdrop binary the hosts run, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	if gone := netns.DeleteStale(); len(gone) > 0 {
		fmt.Fprintf(os.Stderr, "natlab: removed %d namespaces of crashed runs\n", len(gone))
	}
	b, dir, err := BuildPeerdrop(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building peerdrop:", err)
		os.Exit(1)
	}
	bin = b
	code := m.Run()
	if err := goleak.Find(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "natlab: leaked goroutines:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func needLab(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		testenv.Skip(t, "the NAT lab needs Linux network namespaces")
	}
	testenv.NeedRoot(t, "the NAT lab creates network namespaces and nftables NATs")
}

// udpProbe sends one datagram from inside ns (from local port lport) to
// dst, and returns the source address the receiver saw.
func udpProbe(t *testing.T, from *netns.NS, lport int, to *netns.NS, dst netip.AddrPort) (netip.AddrPort, *net.UDPConn) {
	t.Helper()
	var rx *net.UDPConn
	if err := to.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx *net.UDPConn
	if err := from.Do(func() (err error) {
		tx, err = net.ListenUDP("udp4", &net.UDPAddr{Port: lport})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.WriteToUDPAddrPort([]byte("probe"), dst); err != nil {
		t.Fatal(err)
	}
	rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	var buf [16]byte
	_, src, err := rx.ReadFromUDPAddrPort(buf[:])
	if err != nil {
		tx.Close()
		return netip.AddrPort{}, nil
	}
	return src, tx
}

// inbound reports whether a datagram from (ns, port) to mapped reaches conn.
func inbound(t *testing.T, ns *netns.NS, from netip.AddrPort, mapped netip.AddrPort, conn *net.UDPConn) bool {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(from))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteToUDPAddrPort([]byte("in"), mapped)
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var buf [16]byte
	_, _, err := conn.ReadFromUDPAddrPort(buf[:])
	return err == nil
}

// TestNATTypes checks that each router behaves as its type says, with UDP
// probes from a host behind it to the server's two ports: the mapping
// (same public port for both destinations, or not) and the filtering (a
// packet from another port of the server gets in, or not).
func TestNATTypes(t *testing.T) {
	needLab(t)
	l := New(t, bin, 0)
	srv1 := netip.AddrPortFrom(ServerIP, 4001)
	srv2 := netip.AddrPortFrom(ServerIP, 4002)
	for _, nat := range []NAT{FullCone, PortRestricted, Symmetric, UDPBlocked, ResetRestricted} {
		t.Run(string(nat), func(t *testing.T) {
			h := l.Site(nat).Host("probe", nil)
			m1, conn := udpProbe(t, h.NS, 5000, l.Server, srv1)
			if nat == UDPBlocked {
				if conn != nil {
					t.Fatalf("UDP got through a UDP-blocked router (seen from %v)", m1)
				}
				// TCP still works.
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				c, err := h.NS.Dial(ctx, "tcp", l.TURN.Addr.String())
				if err != nil {
					t.Fatalf("TCP through a UDP-blocked router: %v", err)
				}
				c.Close()
				return
			}
			if conn == nil {
				t.Fatal("the first probe did not arrive")
			}
			defer conn.Close()
			if m1.Addr() != h.Site.WAN {
				t.Fatalf("mapped to %v, want the router's %v", m1, h.Site.WAN)
			}
			// Mapping: the same inside port to a second destination.
			m2 := probeVia(t, l, conn, srv2)
			sameMapping := m1 == m2
			// Filtering: a packet from a port the host never sent to.
			open := inbound(t, l.Server, netip.AddrPortFrom(ServerIP, 4009), m1, conn)
			t.Logf("%s: mapped %v then %v; unsolicited inbound accepted: %v", nat, m1, m2, open)
			switch nat {
			case FullCone:
				if !sameMapping || !open {
					t.Fatalf("full cone: same mapping %v (want true), inbound %v (want true)", sameMapping, open)
				}
			case PortRestricted, ResetRestricted:
				if !sameMapping || open {
					t.Fatalf("%s: same mapping %v (want true), inbound %v (want false)", nat, sameMapping, open)
				}
				// An unsolicited SYN: reset (refused at once) or dropped.
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				c, err := l.Server.Dial(ctx, "tcp", netip.AddrPortFrom(h.Site.WAN, 40000).String())
				if c != nil {
					c.Close()
				}
				refused := errors.Is(err, syscall.ECONNREFUSED)
				t.Logf("%s: unsolicited SYN: %v", nat, err)
				if refused != (nat == ResetRestricted) {
					t.Fatalf("%s: unsolicited SYN answered with a reset: %v, want %v", nat, refused, nat == ResetRestricted)
				}
			case Symmetric:
				if sameMapping || open {
					t.Fatalf("symmetric: same mapping %v (want false), inbound %v (want false)", sameMapping, open)
				}
			}
		})
	}
}

// probeVia sends from an existing socket to dst (a fresh listener on the
// server) and returns the source address seen.
func probeVia(t *testing.T, l *Lab, conn *net.UDPConn, dst netip.AddrPort) netip.AddrPort {
	t.Helper()
	var rx *net.UDPConn
	if err := l.Server.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	conn.WriteToUDPAddrPort([]byte("via"), dst)
	rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	var buf [16]byte
	_, src, err := rx.ReadFromUDPAddrPort(buf[:])
	if err != nil {
		t.Fatalf("probe to %v: %v", dst, err)
	}
	return src
}
