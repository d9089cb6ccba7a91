// Package netopt parses the network options people type (bootstrap nodes,
// listen address, TURN servers) for the command-line tool and the mobile
// bindings, with one meaning and one set of messages for both.
package netopt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop/ice"
)

// SyntaxError is an option that is malformed (as opposed to a name that
// did not resolve).
type SyntaxError struct {
	Option, Value, Want string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Option, e.Value, e.Want)
}

// List splits a comma-separated list, dropping empty items.
func List(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Bootstrap parses HOST:PORT,...; host names are resolved (every address
// of each, within 5s).
func Bootstrap(ctx context.Context, list string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, b := range List(list) {
		if ap, err := netip.ParseAddrPort(b); err == nil {
			out = append(out, ap)
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return nil, &SyntaxError{"--bootstrap", b, "want HOST:PORT"}
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, &SyntaxError{"--bootstrap", b, "bad port"}
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("--bootstrap %s: %w", b, err)
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
		}
	}
	return out, nil
}

// Listen parses IP:PORT, or :PORT for every IPv4 address.
func Listen(s string) (netip.AddrPort, error) {
	if strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, &SyntaxError{"--listen", s, "want IP:PORT (port 0: any)"}
	}
	return ap, nil
}

// Servers parses the STUN and the TURN options together (see STUN and
// TURN): the ICE servers of a device.
func Servers(stun, turn, turnUser, turnPass string) ([]ice.Server, error) {
	out, err := TURN(turn, turnUser, turnPass)
	if err != nil {
		return nil, err
	}
	s, err := STUN(stun)
	if err != nil {
		return nil, err
	}
	return append(out, s...), nil
}

// STUN parses URL,... into STUN servers (stun:HOST[:PORT] or
// stuns:HOST[:PORT], reached over TCP or TLS). They tell a device its
// public address, which direct connections between two NATs (TCP
// simultaneous open) need; a TURN server serves as one too.
func STUN(urls string) ([]ice.Server, error) {
	var out []ice.Server
	for _, u := range List(urls) {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			return nil, &SyntaxError{"--stun", u, "a STUN URL starts with stun: or stuns: (stun:HOST:PORT)"}
		}
		out = append(out, ice.Server{URL: u})
	}
	return out, nil
}

// TURN parses URL,... into servers that share one user and password.
func TURN(urls, user, pass string) ([]ice.Server, error) {
	var out []ice.Server
	for _, u := range List(urls) {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, &SyntaxError{"--turn", u, "a TURN URL starts with turn: or turns: (turn:HOST:PORT?transport=tcp)"}
		}
		out = append(out, ice.Server{URL: u, Username: user, Password: pass})
	}
	if len(out) == 0 && (user != "" || pass != "") {
		return nil, &SyntaxError{"--turn-user", user, "a TURN user and password need a TURN URL (--turn)"}
	}
	return out, nil
}
