package ice

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun"
)

// hostCandidates returns a passive candidate for every advertised address
// of every listener, and an active candidate per address. When no
// listener has any address but loopback, its loopback addresses are
// advertised (see Config.IncludeLoopback).
func hostCandidates(cfg *Config, listeners []netip.AddrPort) []Candidate {
	out := hostCandidatesOf(cfg, listeners, interfaceAddrs)
	if len(out) == 0 && !cfg.IncludeLoopback {
		// No address but loopback (airplane mode, a container with only
		// lo): two nodes of this machine can still meet there.
		lo := *cfg
		lo.IncludeLoopback = true
		out = hostCandidatesOf(&lo, listeners, func(cfg *Config, v6 bool) []netip.Addr {
			var loop []netip.Addr
			for _, a := range interfaceAddrs(cfg, v6) {
				if a.IsLoopback() {
					loop = append(loop, a)
				}
			}
			return loop
		})
	}
	return out
}

// hostCandidatesOf is hostCandidates with addrsOf listing the addresses
// of unspecified listeners.
func hostCandidatesOf(cfg *Config, listeners []netip.AddrPort, addrsOf func(*Config, bool) []netip.Addr) []Candidate {
	var out []Candidate
	seen := make(map[netip.AddrPort]bool)
	add := func(c Candidate) {
		if !seen[c.Addr] && len(out) < MaxCandidates {
			seen[c.Addr] = true
			out = append(out, c)
		}
	}
	for _, ln := range listeners {
		var addrs []netip.Addr
		if ln.Addr().IsUnspecified() {
			addrs = addrsOf(cfg, ln.Addr().Is6())
		} else {
			addrs = []netip.Addr{ln.Addr()}
		}
		for i, a := range addrs {
			v6 := a.Is6()
			add(Candidate{Type: Host, TCPType: Passive, Addr: netip.AddrPortFrom(a, ln.Port()),
				Priority: candidatePriority(Host, Passive, otherPref(v6, i))})
			add(Candidate{Type: Host, TCPType: Active, Addr: netip.AddrPortFrom(a, discardPort),
				Priority: candidatePriority(Host, Active, otherPref(v6, i))})
		}
	}
	return out
}

// interfaceAddrs lists the usable unicast addresses of one family: up
// interfaces, no link-local addresses, loopback only if configured.
func interfaceAddrs(cfg *Config, v6 bool) []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagPointToPoint != 0 && !cfg.IncludeLoopback {
			continue
		}
		if ifc.Flags&net.FlagLoopback != 0 && !cfg.IncludeLoopback {
			continue
		}
		if cfg.InterfaceFilter != nil && !cfg.InterfaceFilter(ifc.Name) {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.Is6() != v6 || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			if ip.IsLoopback() && !cfg.IncludeLoopback {
				continue
			}
			out = append(out, ip)
		}
	}
	return out
}

// stunBinding asks a STUN server, over TCP or TLS (RFC 8489 section 6.2.2:
// no RFC 4571 framing to servers), for this host's reflexive address.
func stunBinding(ctx context.Context, cfg *Config, srv server) (netip.AddrPort, error) {
	mapped, _, err := stunBindingVia(ctx, cfg, srv, func(ctx context.Context, _ netip.Addr, addr string) (net.Conn, error) {
		return cfg.DialContext(ctx, "tcp", addr)
	})
	return mapped, err
}

// stunBindingVia is stunBinding over a connection opened by dial; it also
// returns the connection's local address.
func stunBindingVia(ctx context.Context, cfg *Config, srv server, dial func(ctx context.Context, ip netip.Addr, addr string) (net.Conn, error)) (netip.AddrPort, netip.AddrPort, error) {
	fail := func(r Reason, err error) (netip.AddrPort, netip.AddrPort, error) {
		return netip.AddrPort{}, netip.AddrPort{}, &ServerError{Server: srv.url, Reason: r, Err: err}
	}
	ip, err := resolveServer(ctx, srv)
	if err != nil {
		return fail(ReasonTURNUnreachable, err)
	}
	conn, err := dial(ctx, ip, netip.AddrPortFrom(ip, uint16(srv.port)).String())
	if err != nil {
		return fail(ReasonTURNUnreachable, err)
	}
	defer conn.Close()
	local := addrPortOf(conn.LocalAddr())
	if srv.tls {
		tc, err := tlsClient(ctx, cfg, srv, conn)
		if err != nil {
			return fail(ReasonTURNUnreachable, err)
		}
		conn = tc
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return fail(ReasonProtocol, err)
	}
	if _, err := conn.Write(req.Raw); err != nil {
		return fail(ReasonTURNUnreachable, err)
	}
	var buf [maxFrame]byte
	if _, err := io.ReadFull(conn, buf[:stunHeaderSize]); err != nil {
		return fail(ReasonTimeout, err)
	}
	n := stunHeaderSize + int(binary.BigEndian.Uint16(buf[2:4]))
	if n > maxFrame {
		return fail(ReasonProtocol, fmt.Errorf("%d-byte answer", n))
	}
	if _, err := io.ReadFull(conn, buf[stunHeaderSize:n]); err != nil {
		return fail(ReasonTimeout, err)
	}
	res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
	if err := res.Decode(); err != nil {
		return fail(ReasonProtocol, err)
	}
	if res.TransactionID != req.TransactionID || res.Type != stun.BindingSuccess {
		return fail(ReasonProtocol, errors.New("unexpected answer "+res.Type.String()))
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(res); err != nil {
		return fail(ReasonProtocol, err)
	}
	a, ok := netip.AddrFromSlice(xa.IP)
	if !ok {
		return fail(ReasonProtocol, errors.New("bad mapped address"))
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(xa.Port)), local, nil
}
