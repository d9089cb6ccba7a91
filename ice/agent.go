package ice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun"
)

// maxHandshakes bounds incoming connections that have not yet shown a valid
// first check.
const maxHandshakes = 128

// Agent owns the passive TCP listeners shared by all sessions of a device,
// and routes each incoming connection to its session by the ufrag in the
// first check's USERNAME. One Agent serves any number of concurrent
// sessions.
type Agent struct {
	cfg     Config
	servers []server
	log     *slog.Logger
	lns     []*net.TCPListener

	handshakes chan struct{}
	done       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once

	mu       sync.Mutex
	sessions map[string]*Session
	closed   bool
	soDials  map[netip.Addr]int // simultaneous-open dialers per target (simopen.go)
	soCount  int
}

// NewAgent opens the listeners of cfg (nil means defaults). A default
// listener whose address family the host lacks is skipped; a configured one
// is an error.
func NewAgent(cfg *Config) (*Agent, error) {
	c, servers, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: c, servers: servers, log: c.Logger,
		handshakes: make(chan struct{}, maxHandshakes),
		done:       make(chan struct{}),
		sessions:   make(map[string]*Session),
		soDials:    make(map[netip.Addr]int),
	}
	explicit := cfg != nil && len(cfg.ListenAddrs) > 0
	for _, la := range c.ListenAddrs {
		la = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
		network := "tcp4"
		if la.Addr().Is6() {
			if c.DisableIPv6 {
				continue
			}
			network = "tcp6"
		} else if c.DisableIPv4 {
			continue
		}
		if la.Port() != 0 && c.simultaneousOpen() {
			// SO_REUSEPORT would let a second process share a fixed port
			// (and its connections): make sure it is free first.
			probe, err := net.ListenTCP(network, net.TCPAddrFromAddrPort(la))
			if err != nil {
				a.closeListeners()
				return nil, fmt.Errorf("ice: listen %s: %w", la, err)
			}
			probe.Close()
		}
		lc := net.ListenConfig{Control: c.control(c.simultaneousOpen())}
		l, err := lc.Listen(context.Background(), network, la.String())
		if err != nil {
			if !explicit {
				a.log.Debug("skipping listener", "addr", la, "err", err)
				continue
			}
			a.closeListeners()
			return nil, fmt.Errorf("ice: listen %s: %w", la, err)
		}
		a.lns = append(a.lns, l.(*net.TCPListener))
	}
	if len(a.lns) == 0 && c.Mode != ModeRelayOnly {
		return nil, fmt.Errorf("%w: no listener could be opened", ErrConfig)
	}
	for _, ln := range a.lns {
		a.wg.Add(1)
		go a.acceptLoop(ln)
	}
	return a, nil
}

// Addrs returns the addresses the listeners are bound to.
func (a *Agent) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(a.lns))
	for _, ln := range a.lns {
		out = append(out, addrPortOf(ln.Addr()))
	}
	return out
}

// Close closes the listeners and every open session, and waits for their
// goroutines. Connections already returned by Connect stay open.
func (a *Agent) Close() error {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		sessions := make([]*Session, 0, len(a.sessions))
		for _, s := range a.sessions {
			sessions = append(sessions, s)
		}
		a.mu.Unlock()
		close(a.done)
		a.closeListeners()
		for _, s := range sessions {
			s.Close()
		}
		a.wg.Wait()
	})
	return nil
}

func (a *Agent) closeListeners() {
	for _, ln := range a.lns {
		ln.Close()
	}
}

func (a *Agent) acceptLoop(ln *net.TCPListener) {
	defer a.wg.Done()
	var backoff time.Duration
	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.log.Debug("accept failed", "err", err, "retry", backoff)
			select {
			case <-a.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		select {
		case a.handshakes <- struct{}{}:
		default:
			conn.Close() // too many unauthenticated connections
			continue
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer func() { <-a.handshakes }()
			a.route(conn)
		}()
	}
}

// route reads the first frame of an incoming connection and hands it to the
// session its USERNAME names. Anything else is closed without an answer.
func (a *Agent) route(conn net.Conn) {
	req, err := readFirstCheck(conn, a.cfg.CheckTimeout)
	if err != nil {
		conn.Close()
		return
	}
	a.mu.Lock()
	s := a.sessions[req.localUfrag]
	a.mu.Unlock()
	if s == nil {
		a.log.Debug("check for an unknown ufrag", "from", conn.RemoteAddr())
		conn.Close()
		return
	}
	s.deliver(conn, req, nil)
}

// readFirstCheck reads and parses the first frame of an incoming
// connection, which must be a Binding request (integrity is the session's
// to check).
func readFirstCheck(conn net.Conn, timeout time.Duration) (request, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	var buf [maxFrame]byte
	frame, err := readFrame(conn, &buf)
	if err != nil {
		return request{}, err
	}
	m, err := decodeMessage(frame)
	if err != nil {
		return request{}, err
	}
	if m.Type != stun.BindingRequest {
		return request{}, errUnexpected
	}
	return parseRequest(m)
}

func (a *Agent) register(s *Session) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if _, dup := a.sessions[s.ufrag]; dup {
		return errors.New("ice: ufrag collision") // 2^-48: practically never
	}
	a.sessions[s.ufrag] = s
	return nil
}

func (a *Agent) unregister(s *Session) {
	a.mu.Lock()
	if a.sessions[s.ufrag] == s {
		delete(a.sessions, s.ufrag)
	}
	a.mu.Unlock()
}

// NewSession gathers candidates for one connection with one peer: host
// candidates from the listeners, and from each configured server a
// server-reflexive address (STUN) or a TCP relay allocation (TURN), in
// parallel, bounded by ctx and GatherTimeout. A server that fails is
// recorded (see Session.ServerErrors) and the session goes on without it.
// controlling says which role this side starts in: the side that sends the
// offer through signaling should be controlling.
func (a *Agent) NewSession(ctx context.Context, controlling bool) (*Session, error) {
	s := newSession(a, controlling)
	if err := a.register(s); err != nil {
		return nil, err
	}
	if err := s.gather(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
