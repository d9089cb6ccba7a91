package ice

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// maxPending bounds incoming connections that arrive before Connect.
const maxPending = 16

// Session is one connection attempt with one peer: local credentials and
// candidates (Description, sent to the peer through signaling), then Connect
// with the peer's Description. Close releases everything except the
// connection Connect returned.
type Session struct {
	a          *Agent
	cfg        *Config
	log        *slog.Logger
	ufrag, pwd string
	tieBreaker uint64
	ctrl       atomic.Bool // current role; a role conflict may flip it

	wg sync.WaitGroup // routing of relayed incoming connections

	mu         sync.Mutex
	local      []Candidate
	relays     []*relay
	serverErrs []*ServerError
	pending    []incoming
	checker    *checker
	used       bool // Connect was called
	detached   *relay
	closed     bool
}

// incoming is a connection whose first check passed integrity.
type incoming struct {
	conn  net.Conn
	req   request
	relay *relay // set when it arrived on one of our allocations
}

func newSession(a *Agent, controlling bool) *Session {
	s := &Session{a: a, cfg: &a.cfg, log: a.log}
	s.ufrag, s.pwd = newCredentials()
	var tb [8]byte
	_, _ = rand.Read(tb[:])
	s.tieBreaker = binary.BigEndian.Uint64(tb[:])
	s.ctrl.Store(controlling)
	s.log = a.log.With("ufrag", s.ufrag)
	return s
}

// Description returns what to send to the peer.
func (s *Session) Description() Description {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Description{Ufrag: s.ufrag, Pwd: s.pwd, Candidates: append([]Candidate(nil), s.local...)}
}

// ServerErrors returns the STUN/TURN servers that failed while gathering.
func (s *Session) ServerErrors() []*ServerError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ServerError(nil), s.serverErrs...)
}

// Controlling reports the session's current role.
func (s *Session) Controlling() bool { return s.ctrl.Load() }

// Close releases the session's relays and any connection not returned by
// Connect, ends a running Connect with ErrClosed, and waits for the
// session's goroutines. It is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c := s.checker
	pending := s.pending
	s.pending = nil
	relays := s.relays
	s.mu.Unlock()
	if c != nil {
		c.abort()
	}
	for _, in := range pending {
		in.conn.Close()
	}
	s.a.unregister(s)
	for _, r := range relays {
		if r != s.detached {
			r.close()
		}
	}
	s.wg.Wait()
	return nil
}

// deliver takes an incoming connection whose first frame is a check naming
// this session. Checks that fail integrity are dropped with the connection,
// unanswered.
func (s *Session) deliver(conn net.Conn, req request, r *relay) {
	if checkIntegrity(req.msg, s.pwd) != nil {
		s.log.Debug("dropping a check with bad integrity", "from", conn.RemoteAddr())
		conn.Close()
		return
	}
	in := incoming{conn: conn, req: req, relay: r}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
	case s.checker != nil:
		if s.checker.addIncoming(in) {
			return
		}
	case !s.used && len(s.pending) < maxPending:
		s.pending = append(s.pending, in)
		return
	}
	conn.Close()
}

// routeRelayed handles a connection bound on one of this session's
// allocations.
func (s *Session) routeRelayed(r *relay, conn net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		req, err := readFirstCheck(conn, s.cfg.CheckTimeout)
		if err != nil || req.localUfrag != s.ufrag {
			conn.Close()
			return
		}
		s.deliver(conn, req, r)
	}()
}

// gather collects the local candidates.
func (s *Session) gather(ctx context.Context) error {
	cfg := s.cfg
	var cands []Candidate
	if cfg.Mode != ModeRelayOnly {
		cands = hostCandidates(cfg, s.a.Addrs())
	}
	gctx, cancel := context.WithTimeout(ctx, cfg.GatherTimeout)
	defer cancel()

	var g gathered
	var wg sync.WaitGroup
	s.askServers(gctx, &g, &wg)
	if cfg.Mode != ModeRelayOnly && cfg.simultaneousOpen() {
		s.listenerReflexives(gctx, &g, &wg)
	}
	if cfg.PortMapper != nil && cfg.Mode != ModeRelayOnly {
		s.mapPorts(gctx, cands, &g, &wg)
	}
	wg.Wait()
	cands = assemble(cfg, cands, &g)

	s.mu.Lock()
	s.local = cands
	s.relays = g.relays
	s.serverErrs = g.errs
	closed := s.closed
	s.mu.Unlock()
	for _, r := range g.relays {
		r.setIncoming(func(conn net.Conn, _ netip.AddrPort) { s.routeRelayed(r, conn) })
	}
	if closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if cfg.Mode == ModeRelayOnly && len(g.relays) == 0 {
		return &ConnectError{Err: ErrNoPath, Servers: g.errs}
	}
	return nil
}

// gathered is what gather's parallel lookups found: TURN allocations,
// reflexive candidates (from STUN, the listeners' own ports and the port
// mapper) and the servers' failures.
type gathered struct {
	mu     sync.Mutex
	relays []*relay
	srflx  []Candidate
	errs   []*ServerError
}

// askServers allocates at each TURN server and asks each STUN server for
// this host's reflexive address, as the mode allows, in the background.
func (s *Session) askServers(gctx context.Context, g *gathered, wg *sync.WaitGroup) {
	cfg := s.cfg
	for _, srv := range s.a.servers {
		if srv.turn && cfg.Mode == ModeDirectOnly {
			continue
		}
		if !srv.turn && cfg.Mode == ModeRelayOnly {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if srv.turn {
				r, err := allocate(gctx, cfg, srv)
				g.mu.Lock()
				defer g.mu.Unlock()
				if err != nil {
					g.errs = append(g.errs, err.(*ServerError))
					return
				}
				g.relays = append(g.relays, r)
				return
			}
			mapped, err := stunBinding(gctx, cfg, srv)
			g.mu.Lock()
			defer g.mu.Unlock()
			if err != nil {
				g.errs = append(g.errs, err.(*ServerError))
				return
			}
			g.srflx = append(g.srflx, Candidate{Type: ServerReflexive, TCPType: Active,
				Addr: netip.AddrPortFrom(mapped.Addr(), discardPort)})
		}()
	}
}

// listenerReflexives learns, in the background, the public address of
// each listener's own port from each server: passive and simultaneous-open
// reflexive candidates.
func (s *Session) listenerReflexives(gctx context.Context, g *gathered, wg *sync.WaitGroup) {
	for _, srv := range s.a.servers {
		for _, ln := range s.a.Addrs() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mapped, base, err := listenerReflexive(gctx, s.cfg, srv, ln)
				if err != nil || mapped == base {
					if err != nil && !errors.Is(err, errOtherFamily) {
						s.log.Debug("listener's reflexive address failed", "listener", ln, "server", srv.url, "err", err)
					}
					return
				}
				g.mu.Lock()
				defer g.mu.Unlock()
				g.srflx = append(g.srflx, Candidate{Type: ServerReflexive, TCPType: Passive, Addr: mapped, Related: base},
					Candidate{Type: ServerReflexive, TCPType: SimultaneousOpen, Addr: mapped, Related: base})
			}()
		}
	}
}

// mapPorts asks the port mapper, in the background, to forward each
// passive host candidate's port.
func (s *Session) mapPorts(gctx context.Context, cands []Candidate, g *gathered, wg *sync.WaitGroup) {
	for _, c := range cands {
		if c.TCPType != Passive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ext, err := s.cfg.PortMapper.MapPort(gctx, c.Addr)
			if err != nil || !ext.IsValid() || ext == c.Addr {
				s.log.Debug("port mapping failed", "local", c.Addr, "err", err)
				return
			}
			g.mu.Lock()
			g.srflx = append(g.srflx, Candidate{Type: ServerReflexive, TCPType: Passive, Addr: ext, Related: c.Addr})
			g.mu.Unlock()
		}()
	}
}

// assemble makes the local candidate list: the host candidates, the
// reflexive ones that say something new, then the relays; at most
// MaxCandidates, with priorities and foundations.
func assemble(cfg *Config, cands []Candidate, g *gathered) []Candidate {
	srflx := g.srflx
	for _, r := range g.relays {
		if cfg.Mode != ModeRelayOnly && r.mapped.IsValid() {
			srflx = append(srflx, Candidate{Type: ServerReflexive, TCPType: Active,
				Addr: netip.AddrPortFrom(r.mapped.Addr(), discardPort)})
		}
	}
	// Reflexive addresses that are host addresses, or repeated, say nothing.
	type key struct {
		addr netip.AddrPort
		tcp  TCPType
	}
	seen := make(map[key]bool)
	for _, c := range cands {
		seen[key{c.Addr, c.TCPType}] = true
		seen[key{c.Addr, SimultaneousOpen}] = true // a host address needs no simultaneous open
	}
	for i, c := range srflx {
		if seen[key{c.Addr, c.TCPType}] {
			continue
		}
		seen[key{c.Addr, c.TCPType}] = true
		c.Priority = candidatePriority(ServerReflexive, c.TCPType, otherPref(c.Addr.Addr().Is6(), i))
		cands = append(cands, c)
	}
	for i, r := range g.relays {
		c := Candidate{Type: Relay, TCPType: Passive, Addr: r.relayed,
			Priority: candidatePriority(Relay, Passive, otherPref(r.relayed.Addr().Is6(), i))}
		if cfg.Mode != ModeRelayOnly {
			c.Related = r.mapped
		}
		cands = append(cands, c)
	}
	if len(cands) > MaxCandidates {
		cands = cands[:MaxCandidates]
	}
	for i := range cands {
		cands[i].Foundation = strconv.Itoa(i + 1)
	}
	return cands
}

// detach hands a relay over to the connection Connect returns.
func (s *Session) detach(r *relay) {
	s.mu.Lock()
	s.detached = r
	s.mu.Unlock()
	r.setIncoming(nil)
}
