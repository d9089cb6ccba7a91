package ice

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

type evKind uint8

const (
	evValid    evKind = iota + 1 // our check on the path succeeded
	evFailed                     // the path is dead
	evSelected                   // the path is the link: switched to raw data
	evRole                       // the session's role changed
)

type event struct {
	p    *path
	kind evKind
	err  *PathError
}

type pathView struct {
	state   evKind // 0 while checking
	validAt time.Time
	err     *PathError
	started bool
}

// checker runs the connectivity checks of one Connect.
type checker struct {
	s      *Session
	remote Description
	ctx    context.Context
	cancel context.CancelFunc
	events chan event
	in     chan incoming
	done   chan struct{}
	wg     sync.WaitGroup

	// Owned by the loop.
	paths    []*path
	view     map[*path]*pathView
	queue    []*path // outgoing paths not started, best first
	start    time.Time
	relayAt  time.Time
	nominee  *path
	lastPace time.Time
}

func (c *checker) report(p *path, k evKind, err *PathError) {
	select {
	case c.events <- event{p: p, kind: k, err: err}:
	case <-c.done:
	}
}

func (c *checker) switchRole(controlling bool) {
	if c.s.ctrl.CompareAndSwap(!controlling, controlling) {
		c.s.log.Debug("role conflict: switched role", "controlling", controlling)
		select {
		case c.events <- event{kind: evRole}:
		default: // the loop re-evaluates on its next tick anyway
		}
	}
}

// addIncoming takes a connection routed to the session (called with s.mu
// held); false if the checker is done or full.
func (c *checker) addIncoming(in incoming) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.in <- in:
		return true
	default:
		return false
	}
}

func (c *checker) abort() { c.cancel() }

// Connect runs ICE with the peer described by remote until one path is
// selected, and returns it as a reliable stream. ctx bounds the whole
// connect. On failure the error is a *ConnectError listing every path tried.
// Connect may be called once per session.
func (s *Session) Connect(ctx context.Context, remote Description) (*Conn, error) {
	if err := remote.validate(); err != nil {
		return nil, err
	}
	c := &checker{
		s: s, remote: remote,
		events: make(chan event, 64),
		in:     make(chan incoming, maxPending),
		done:   make(chan struct{}),
		view:   make(map[*path]*pathView),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	st, err := s.claim(c)
	if err != nil {
		return nil, err
	}

	c.start = time.Now()
	c.relayAt = c.start.Add(s.cfg.RelayDelay)
	if s.cfg.Mode == ModeRelayOnly {
		c.relayAt = c.start
	}
	// Permissions first: the peer may dial our relays as soon as it starts.
	c.permitPeers(st.relays)
	c.queue = c.outgoingPaths(st.local, st.relays)
	for _, in := range st.pending {
		c.startIncoming(in)
	}
	winner, err := c.loop()
	c.stop(winner)
	if err != nil {
		ce := c.failure(err, st.serverErrs)
		s.log.Debug("connect failed", "err", ce)
		return nil, ce
	}
	if winner.relay != nil {
		s.detach(winner.relay)
	}
	sel := Selected{
		Local: winner.local, Remote: winner.remote,
		LocalAddr:   addrPortOf(winner.conn.LocalAddr()),
		RemoteAddr:  addrPortOf(winner.conn.RemoteAddr()),
		Relayed:     !winner.direct,
		Controlling: s.ctrl.Load(),
		Elapsed:     time.Since(c.start),
		Link:        c.link(winner, st.local),
	}
	s.log.Debug("connected", "path", winner.name, "elapsed", sel.Elapsed)
	return &Conn{Conn: winner.conn, sel: sel, relay: winner.relay}, nil
}

// sessionState is what Connect takes from the session when it claims it.
type sessionState struct {
	pending    []incoming
	relays     []*relay
	local      []Candidate
	serverErrs []*ServerError
}

// claim makes c the session's one checker and takes what gathering and
// early incoming connections left for it.
func (s *Session) claim(c *checker) (sessionState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return sessionState{}, ErrClosed
	case s.used:
		return sessionState{}, ErrInUse
	}
	s.used = true
	s.checker = c
	st := sessionState{pending: s.pending, relays: append([]*relay(nil), s.relays...),
		local: append([]Candidate(nil), s.local...), serverErrs: append([]*ServerError(nil), s.serverErrs...)}
	s.pending = nil
	return st, nil
}

// permitPeers lets the remote's addresses use each of our relays.
func (c *checker) permitPeers(relays []*relay) {
	peerIPs := remoteIPs(c.remote)
	var wg sync.WaitGroup
	for _, r := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.permitPeers(c.ctx, peerIPs); err != nil {
				c.s.log.Debug("TURN permission failed", "turn", r.srv.url, "err", err)
			}
		}()
	}
	wg.Wait()
}

// stop ends every path but the winner (nil: all), waits for their
// goroutines, and closes incoming connections still queued.
func (c *checker) stop(winner *path) {
	c.s.mu.Lock()
	close(c.done)
	c.s.mu.Unlock()
	c.cancel()
	for _, p := range c.paths {
		if p != winner {
			p.shutdown()
		}
	}
	c.wg.Wait()
	for {
		select {
		case in := <-c.in:
			in.conn.Close()
			continue
		default:
		}
		break
	}
}

// failure is the ConnectError of a Connect that found no path: each
// path's error (a timeout if it had none) and each server's.
func (c *checker) failure(err error, serverErrs []*ServerError) *ConnectError {
	ce := &ConnectError{Err: err, Servers: serverErrs}
	for _, p := range c.paths {
		pe := c.view[p].err
		if pe == nil {
			pe = &PathError{Path: p.name, Reason: ReasonTimeout}
		}
		ce.Paths = append(ce.Paths, pe)
	}
	return ce
}

// loop paces outgoing checks, starts incoming paths, nominates (when
// controlling) and returns the selected path.
func (c *checker) loop() (*path, error) {
	cfg := c.s.cfg
	tick := time.NewTicker(min(cfg.CheckInterval, cfg.NominationWait/2+time.Millisecond))
	defer tick.Stop()
	for {
		if err := c.step(); err != nil {
			return nil, err
		}
		select {
		case <-c.ctx.Done():
			if c.s.isClosed() {
				return nil, ErrClosed
			}
			return nil, c.ctx.Err()
		case ev := <-c.events:
			if ev.p == nil {
				continue // role change
			}
			v := c.view[ev.p]
			switch ev.kind {
			case evValid:
				if v.state == 0 {
					v.state, v.validAt = evValid, time.Now()
				}
			case evFailed:
				v.state, v.err = evFailed, ev.err
				if c.nominee == ev.p {
					c.nominee = nil
				}
			case evSelected:
				return ev.p, nil
			}
		case in := <-c.in:
			c.startIncoming(in)
		case <-tick.C:
		}
	}
}

// step starts the next outgoing path when pacing allows, nominates, and
// decides when nothing is left to wait for.
func (c *checker) step() error {
	now := time.Now()
	cfg := c.s.cfg
	if len(c.queue) > 0 && now.Sub(c.lastPace) >= cfg.CheckInterval {
		next := c.queue[0]
		if next.direct || !now.Before(c.relayAt) || !c.directLeft() {
			c.queue = c.queue[1:]
			c.lastPace = now
			c.launch(next, nil)
		}
	}
	if c.s.ctrl.Load() && c.nominee == nil {
		c.maybeNominate(now)
	}
	if len(c.queue) == 0 && c.alive() == 0 && now.Sub(c.start) >= cfg.CheckTimeout {
		return ErrNoPath
	}
	return nil
}

// directLeft reports whether a direct path is still queued or being checked.
func (c *checker) directLeft() bool {
	for _, p := range c.queue {
		if p.direct {
			return true
		}
	}
	for _, p := range c.paths {
		if p.direct && c.view[p].state != evFailed {
			return true
		}
	}
	return false
}

func (c *checker) alive() int {
	n := 0
	for _, p := range c.paths {
		if c.view[p].state != evFailed {
			n++
		}
	}
	return n
}

// maybeNominate picks the best valid path: direct before relayed, then by
// pair priority. A direct path is nominated at once unless a better direct
// path is still pending, in which case it waits NominationWait; a relayed
// path waits while direct paths are pending, for NominationWait at most.
func (c *checker) maybeNominate(now time.Time) {
	var best *path
	for _, p := range c.paths {
		if c.view[p].state == evValid && (best == nil || better(p, best)) {
			best = p
		}
	}
	if best == nil {
		return
	}
	waited := now.Sub(c.view[best].validAt) >= c.s.cfg.NominationWait
	if !waited {
		pending := func(p *path) bool { return p.direct && (!best.direct || p.priority() > best.priority()) }
		for _, p := range c.queue {
			if pending(p) {
				return
			}
		}
		for _, p := range c.paths {
			if c.view[p].state == 0 && pending(p) {
				return
			}
		}
	}
	c.nominee = best
	if err := best.nominate(); err != nil {
		v := c.view[best]
		v.state, v.err = evFailed, best.failure(err)
		best.shutdown()
		c.nominee = nil
	}
}

func better(a, b *path) bool {
	if a.direct != b.direct {
		return a.direct
	}
	return a.priority() > b.priority()
}

func (c *checker) launch(p *path, first *request) {
	p.id = len(c.paths)
	c.paths = append(c.paths, p)
	c.view[p] = &pathView{started: true}
	c.wg.Add(1)
	go p.run(c.ctx, first)
}

// startIncoming turns an accepted connection into a path.
func (c *checker) startIncoming(in incoming) {
	if in.req.remoteUfrag != c.remote.Ufrag {
		in.conn.Close()
		return
	}
	from := addrPortOf(in.conn.RemoteAddr())
	p := &path{c: c, conn: in.conn, relay: in.relay, remotePrio: in.req.priority}
	remoteRelayed := in.req.priority>>24 == 0
	for _, rc := range c.remote.Candidates {
		if rc.Type == Relay && rc.Addr == from {
			remoteRelayed = true
		}
	}
	p.direct = in.relay == nil && !remoteRelayed
	p.remote = Candidate{Type: PeerReflexive, TCPType: Active, Addr: from, Priority: in.req.priority}
	if remoteRelayed {
		p.remote.Type = Relay
	}
	if in.relay != nil {
		p.local = c.relayCandidate(in.relay)
		p.name = fmt.Sprintf("incoming via our relay %s from %s", in.relay.relayed, from)
	} else {
		la := addrPortOf(in.conn.LocalAddr())
		p.local = Candidate{Type: Host, TCPType: Passive, Addr: la,
			Priority: candidatePriority(Host, Passive, otherPref(la.Addr().Is6(), 0))}
		for _, lc := range c.s.Description().Candidates {
			if lc.Addr == la {
				p.local = lc
			}
		}
		p.name = fmt.Sprintf("incoming host %s from %s", la, from)
	}
	p.localPrio = p.local.Priority
	req := in.req
	c.launch(p, &req)
}

func (c *checker) relayCandidate(r *relay) Candidate {
	for _, lc := range c.s.Description().Candidates {
		if lc.Type == Relay && lc.Addr == r.relayed {
			return lc
		}
	}
	return Candidate{Type: Relay, TCPType: Passive, Addr: r.relayed, Priority: candidatePriority(Relay, Passive, 0)}
}

// outgoingPaths pairs our active side with the peer's passive candidates:
// host → passive (direct), host → peer relay, our relay → passive.
func (c *checker) outgoingPaths(local []Candidate, relays []*relay) []*path {
	cfg := c.s.cfg
	activeFor := func(v6 bool) (Candidate, bool) {
		for _, lc := range local {
			if lc.Type == Host && lc.TCPType == Active && lc.Addr.Addr().Is6() == v6 {
				return lc, true
			}
		}
		return Candidate{}, false
	}
	var out []*path
	seen := make(map[string]bool)
	for _, rc := range c.remote.Candidates {
		if rc.TCPType != Passive || seen[rc.Addr.String()] {
			continue
		}
		seen[rc.Addr.String()] = true
		v6 := rc.Addr.Addr().Is6()
		if cfg.Mode != ModeRelayOnly && !(rc.Type == Relay && cfg.Mode == ModeDirectOnly) {
			if lc, ok := activeFor(v6); ok {
				p := &path{c: c, outgoing: true, target: rc.Addr, local: lc, remote: rc,
					localPrio: lc.Priority, remotePrio: rc.Priority, direct: rc.Type != Relay}
				p.name = fmt.Sprintf("host → %s %s", rc.Type, rc.Addr)
				out = append(out, p)
			}
		}
		if cfg.Mode == ModeDirectOnly {
			continue
		}
		for _, r := range relays {
			if r.relayed.Addr().Is6() != v6 {
				continue
			}
			lc := c.relayCandidate(r)
			p := &path{c: c, outgoing: true, target: rc.Addr, relay: r, local: lc, remote: rc,
				localPrio: lc.Priority, remotePrio: rc.Priority}
			p.name = fmt.Sprintf("our relay %s → %s %s", r.relayed, rc.Type, rc.Addr)
			out = append(out, p)
		}
	}
	out = append(out, c.soPaths(local)...)
	slices.SortStableFunc(out, func(a, b *path) int {
		if a.direct != b.direct {
			if a.direct {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.priority(), a.priority())
	})
	const maxPaths = 64
	if len(out) > maxPaths {
		out = out[:maxPaths]
	}
	return out
}

// link says how the selected path goes (Selected.Link). A connection the
// peer opened came from one of its "so" candidates (simultaneous open), from
// a host address of its (direct), or through its NAT to an address of ours
// a NAT or port mapping gives us (mapped) when we have one, else directly.
func (c *checker) link(p *path, local []Candidate) string {
	switch {
	case !p.direct:
		return LinkRelay
	case p.so:
		return LinkSimultaneousOpen
	case p.outgoing && p.remote.Type == ServerReflexive:
		return LinkMapped
	case p.outgoing:
		return LinkDirect
	}
	from := addrPortOf(p.conn.RemoteAddr())
	for _, rc := range c.remote.Candidates {
		switch {
		case rc.TCPType == SimultaneousOpen && (rc.Addr == from || rc.Related == from):
			return LinkSimultaneousOpen // from its listener's port, through its NAT or not
		case rc.Type == Host && rc.Addr.Addr() == from.Addr():
			return LinkDirect
		}
	}
	for _, lc := range local {
		if lc.Type == ServerReflexive && lc.TCPType == Passive {
			return LinkMapped
		}
	}
	return LinkDirect
}

// soPaths pairs our "so" candidates with the peer's of the same family
// (simopen.go), soPathsPerSession at most.
func (c *checker) soPaths(local []Candidate) []*path {
	cfg := c.s.cfg
	if !cfg.simultaneousOpen() || cfg.Mode == ModeRelayOnly {
		return nil
	}
	var out []*path
	for _, lc := range local {
		if lc.TCPType != SimultaneousOpen {
			continue
		}
		bind, ok := c.s.a.listenerFor(lc.Related)
		if !ok {
			continue
		}
		for _, rc := range c.remote.Candidates {
			if rc.TCPType != SimultaneousOpen || rc.Addr.Addr().Is6() != lc.Addr.Addr().Is6() || len(out) == soPathsPerSession {
				continue
			}
			p := &path{c: c, outgoing: true, so: true, bind: bind, target: rc.Addr, local: lc, remote: rc,
				localPrio: lc.Priority, remotePrio: rc.Priority, direct: true}
			p.name = fmt.Sprintf("%s%s → so %s", soPathPrefix, lc.Addr, rc.Addr)
			out = append(out, p)
		}
	}
	return out
}

// remoteIPs are the peer's addresses a TURN permission must allow.
func remoteIPs(d Description) []netip.Addr {
	var out []netip.Addr
	for _, c := range d.Candidates {
		for _, a := range []netip.AddrPort{c.Addr, c.Related} {
			if a.IsValid() && !slices.Contains(out, a.Addr()) {
				out = append(out, a.Addr())
			}
		}
	}
	return out
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
