package ice

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mode restricts which paths a session uses.
type Mode uint8

// Modes.
const (
	// ModeAll tries direct paths first and relayed paths after RelayDelay.
	ModeAll Mode = iota
	// ModeDirectOnly never allocates or uses a TURN relay.
	ModeDirectOnly
	// ModeRelayOnly advertises only this side's own relay candidates and
	// connects only through its own TURN allocations, so the peer never
	// learns this host's addresses. It needs at least one TURN server.
	ModeRelayOnly
)

// Server is a STUN or TURN server, reached over TCP or TLS.
type Server struct {
	// URL is "stun:host[:port]", "stuns:host[:port]", "turn:host[:port]" or
	// "turns:host[:port]" (RFC 7064, RFC 7065). Ports default to 3478 and
	// 5349. "?transport=tcp" is accepted; UDP transport is not (this package
	// only does TCP).
	URL string
	// Username and Password are the TURN long-term credentials.
	Username, Password string
}

// PortMapper is the seam for port-mapping protocols (UPnP IGD, NAT-PMP,
// PCP): given a local passive listener address, it returns the public
// address a gateway forwards to it. Each mapping becomes a passive
// server-reflexive candidate. Mappings are released by the mapper itself.
type PortMapper interface {
	MapPort(ctx context.Context, local netip.AddrPort) (netip.AddrPort, error)
}

// Config configures an Agent. The zero value is usable: it listens on an
// ephemeral port per address family and uses no servers. A nil *Config
// means the zero value.
type Config struct {
	// ListenAddrs are the passive TCP listeners. Default: 0.0.0.0:0 and
	// [::]:0. A listener on an unspecified address advertises every usable
	// address of its family (see IncludeLoopback, InterfaceFilter); one on a
	// specific address advertises that address.
	ListenAddrs []netip.AddrPort
	// DisableIPv4 and DisableIPv6 drop a whole address family. Default: both used.
	DisableIPv4, DisableIPv6 bool
	// IncludeLoopback advertises loopback addresses of unspecified
	// listeners. Default: false (a listener bound to a loopback address is
	// always advertised, and so are loopback addresses when the host has
	// no other: two nodes of a machine with no network still connect).
	IncludeLoopback bool
	// InterfaceFilter, if set, keeps only interfaces for which it returns
	// true. Default: all up, non-point-to-point interfaces.
	InterfaceFilter func(name string) bool

	// Servers are the STUN and TURN servers. Default: none (host candidates
	// only, which is what a LAN with no internet needs).
	Servers []Server
	// TLSConfig is used for stuns:/turns: servers. ServerName defaults to the
	// URL's host. Default: the system roots.
	TLSConfig *tls.Config
	// PortMapper, if set, adds mapped passive candidates. Default: none.
	PortMapper PortMapper

	// Mode restricts the paths used. Default: ModeAll.
	Mode Mode
	// RelayDelay is the head start direct paths get before relayed ones are
	// tried (relayed paths start earlier if every direct path has failed).
	// Default: 1s.
	RelayDelay time.Duration
	// CheckInterval paces new connectivity checks (RFC 8445 Ta). Default: 5ms.
	CheckInterval time.Duration
	// CheckTimeout bounds one path (TCP connect plus checks) and how long a
	// session waits for the peer's checks after all of its own failed.
	// Default: 5s.
	CheckTimeout time.Duration
	// NominationWait is how long the controlling side waits, after a path
	// succeeded, for a better one still being checked. Default: 25ms.
	NominationWait time.Duration
	// GatherTimeout bounds gathering from STUN/TURN servers and port
	// mappers. Default: 5s.
	GatherTimeout time.Duration

	// DialContext opens TCP connections (to peers and servers). Default: a
	// net.Dialer. Mobile apps can use it to protect sockets from a VPN.
	// It cannot choose the local port, so the sockets that must use a
	// listener's port (simultaneous-open dials and the STUN requests that
	// learn that port's public address) are opened by a net.Dialer with
	// Control instead.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// Control, if set, is called on every socket this package opens itself
	// (listeners, simultaneous-open dials, STUN from a listener's port)
	// before it binds, as net.Dialer.Control is: Android apps protect
	// sockets from their VPN here. Default: none.
	Control func(network, address string, c syscall.RawConn) error
	// NoSimultaneousOpen turns off TCP simultaneous open (RFC 6544 "so"
	// candidates) and the listeners' SO_REUSEPORT: no socket but the
	// listener uses its port, so the public address of a listener's port is
	// not learned either (a PortMapper still maps it). Simultaneous open is
	// never offered where the OS has no SO_REUSEPORT (Windows).
	// Default: false (on).
	NoSimultaneousOpen bool
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// simultaneousOpen reports whether sessions offer and use "so" candidates.
func (c *Config) simultaneousOpen() bool { return reusePortSupported && !c.NoSimultaneousOpen }

// control is the net.Dialer/ListenConfig Control of sockets that share a
// listener's port: SO_REUSEADDR and SO_REUSEPORT (where simultaneous open
// is on), then Config.Control.
func (c *Config) control(reuse bool) func(network, address string, rc syscall.RawConn) error {
	return func(network, address string, rc syscall.RawConn) error {
		if reuse {
			if err := setReuse(rc); err != nil {
				return err
			}
		}
		if c.Control != nil {
			return c.Control(network, address, rc)
		}
		return nil
	}
}

type server struct {
	url      string
	turn     bool
	tls      bool
	host     string // host name or IP literal
	port     int
	user     string
	password string
}

func (c *Config) withDefaults() (Config, []server, error) {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	if len(cfg.ListenAddrs) == 0 {
		if !cfg.DisableIPv4 {
			cfg.ListenAddrs = append(cfg.ListenAddrs, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		}
		if !cfg.DisableIPv6 {
			cfg.ListenAddrs = append(cfg.ListenAddrs, netip.AddrPortFrom(netip.IPv6Unspecified(), 0))
		}
	}
	if cfg.RelayDelay == 0 {
		cfg.RelayDelay = time.Second
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 5 * time.Millisecond
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 5 * time.Second
	}
	if cfg.NominationWait == 0 {
		cfg.NominationWait = 25 * time.Millisecond
	}
	if cfg.GatherTimeout == 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.DialContext == nil {
		var d net.Dialer
		cfg.DialContext = d.DialContext
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RelayDelay < 0 || cfg.CheckInterval < 0 || cfg.CheckTimeout < 0 || cfg.NominationWait < 0 || cfg.GatherTimeout < 0 {
		return cfg, nil, fmt.Errorf("%w: negative duration", ErrConfig)
	}
	if cfg.Mode > ModeRelayOnly {
		return cfg, nil, fmt.Errorf("%w: unknown mode %d", ErrConfig, cfg.Mode)
	}
	for _, a := range cfg.ListenAddrs {
		if !a.IsValid() {
			return cfg, nil, fmt.Errorf("%w: listen address %v", ErrConfig, a)
		}
	}
	var servers []server
	turns := 0
	for _, s := range cfg.Servers {
		sv, err := parseServer(s)
		if err != nil {
			return cfg, nil, err
		}
		if sv.turn {
			turns++
		}
		servers = append(servers, sv)
	}
	if cfg.Mode == ModeRelayOnly && turns == 0 {
		return cfg, nil, fmt.Errorf("%w: relay-only mode needs a TURN server", ErrConfig)
	}
	return cfg, servers, nil
}

func parseServer(s Server) (server, error) {
	sv := server{url: s.URL, user: s.Username, password: s.Password}
	scheme, rest, ok := strings.Cut(s.URL, ":")
	if !ok {
		return sv, fmt.Errorf("%w: server URL %q: want scheme:host[:port]", ErrConfig, s.URL)
	}
	switch strings.ToLower(scheme) {
	case "stun":
	case "stuns":
		sv.tls = true
	case "turn":
		sv.turn = true
	case "turns":
		sv.turn, sv.tls = true, true
	default:
		return sv, fmt.Errorf("%w: server URL %q: scheme must be stun, stuns, turn or turns", ErrConfig, s.URL)
	}
	hostport, query, _ := strings.Cut(rest, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return sv, fmt.Errorf("%w: server URL %q: %w", ErrConfig, s.URL, err)
		}
		for k, v := range q {
			if k != "transport" || len(v) != 1 {
				return sv, fmt.Errorf("%w: server URL %q: unknown parameter %q", ErrConfig, s.URL, k)
			}
			if !strings.EqualFold(v[0], "tcp") {
				return sv, fmt.Errorf("%w: server URL %q: transport %q: only tcp is supported", ErrConfig, s.URL, v[0])
			}
		}
	}
	sv.port = 3478
	if sv.tls {
		sv.port = 5349
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	} else {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return sv, fmt.Errorf("%w: server URL %q: bad port", ErrConfig, s.URL)
		}
		sv.port = int(p)
	}
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return sv, fmt.Errorf("%w: server URL %q: bad host", ErrConfig, s.URL)
	}
	sv.host = host
	if sv.turn && (sv.user == "" || sv.password == "") {
		return sv, fmt.Errorf("%w: TURN server %q needs a username and password", ErrConfig, s.URL)
	}
	return sv, nil
}
