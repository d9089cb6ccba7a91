package ice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun"
)

// path is one candidate pair being checked over one TCP connection: either
// dialed by this side (outgoing) or accepted from the peer (incoming, on a
// listener or on one of our relays). Its goroutine owns reading; writes are
// serialized by wmu because the checker writes the nomination.
type path struct {
	c        *checker
	id       int
	name     string
	direct   bool
	outgoing bool
	relay    *relay         // our allocation the connection goes through, if any
	target   netip.AddrPort // where an outgoing path dials
	so       bool           // a simultaneous-open pair: dial from bind, repeatedly (simopen.go)
	bind     netip.AddrPort // the listener address a "so" path dials from

	local, remote         Candidate
	localPrio, remotePrio uint32

	wmu  sync.Mutex
	mu   sync.Mutex
	conn net.Conn
	txs  map[[stun.TransactionIDSize]byte]txKind
	shut bool // closed by the checker

	// Owned by the path goroutine.
	sentCheck bool
	valid     bool
	nominated bool           // controlled: answered USE-CANDIDATE with success
	deferred  *stun.Message  // controlled: USE-CANDIDATE waiting for our own check
	buf       [maxFrame]byte //
}

type txKind struct {
	nominate    bool
	controlling bool // the role the request claimed
}

// priority is the pair priority under the session's current role.
func (p *path) priority() uint64 {
	if p.c.s.ctrl.Load() {
		return pairPriority(p.localPrio, p.remotePrio)
	}
	return pairPriority(p.remotePrio, p.localPrio)
}

// setConn records the connection; false (and the connection closed) if the
// checker already finished.
func (p *path) setConn(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		conn.Close()
		return false
	}
	p.conn = conn
	return true
}

// shutdown closes the path's connection (the goroutine then ends).
func (p *path) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shut = true
	if p.conn != nil {
		p.conn.Close()
	}
}

func (p *path) write(m *stun.Message, kind *txKind) error {
	if kind != nil {
		p.mu.Lock()
		if p.txs == nil {
			p.txs = make(map[[stun.TransactionIDSize]byte]txKind)
		}
		p.txs[m.TransactionID] = *kind
		p.mu.Unlock()
	}
	b := appendFrame(make([]byte, 0, 2+len(m.Raw)), m.Raw)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(p.c.s.cfg.CheckTimeout))
	_, err := p.conn.Write(b)
	return err
}

// sendCheck sends our connectivity check on the path.
func (p *path) sendCheck(nominate bool) error {
	s := p.c.s
	ctrl := s.ctrl.Load()
	m, err := newRequest(s.ufrag, p.c.remote.Ufrag, p.c.remote.Pwd, checkParams{
		priority: p.checkPriority(), controlling: ctrl, tieBreaker: s.tieBreaker, useCandidate: nominate,
	})
	if err != nil {
		return err
	}
	if !nominate {
		p.sentCheck = true // only the path goroutine sends plain checks
	}
	return p.write(m, &txKind{nominate: nominate, controlling: ctrl})
}

// checkPriority is the PRIORITY attribute: the local candidate's priority
// as a peer-reflexive candidate (RFC 8445 section 7.1.1). Checks from a
// relay keep the relay type preference, so the peer can tell the path is
// relayed.
func (p *path) checkPriority() uint32 {
	if p.relay != nil {
		return p.localPrio
	}
	return candidatePriority(PeerReflexive, p.local.TCPType, p.localPrio>>8&0x1fff)
}

// nominate sends USE-CANDIDATE (controlling side, called by the checker).
func (p *path) nominate() error { return p.sendCheck(true) }

// run dials (outgoing) or takes over an accepted connection (incoming,
// first is its first check), runs the checks, and reports to the checker.
func (p *path) run(ctx context.Context, first *request) {
	defer p.c.wg.Done()
	selected := false
	defer func() {
		if !selected {
			p.shutdown()
		}
	}()
	if p.outgoing {
		conn, err := p.dial(ctx)
		if err != nil {
			p.c.report(p, evFailed, p.failure(err))
			return
		}
		if !p.setConn(conn) {
			return
		}
	}
	_ = p.conn.SetReadDeadline(time.Now().Add(p.c.s.cfg.CheckTimeout))
	var err error
	if p.outgoing {
		err = p.sendCheck(false)
	} else {
		err = p.onRequest(*first)
	}
	for err == nil {
		var frame []byte
		frame, err = readFrame(p.conn, &p.buf)
		if err != nil {
			break
		}
		var m *stun.Message
		if m, err = decodeMessage(frame); err != nil {
			break
		}
		var done bool
		done, err = p.onMessage(m)
		if done {
			selected = true
			_ = p.conn.SetDeadline(time.Time{})
			p.c.report(p, evSelected, nil)
			return
		}
	}
	p.c.report(p, evFailed, p.failure(err))
}

func (p *path) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.c.s.cfg.CheckTimeout)
	defer cancel()
	if p.relay != nil {
		return p.relay.dial(ctx, p.target)
	}
	if p.so {
		return p.dialSO(ctx)
	}
	for {
		conn, err := p.c.s.cfg.DialContext(ctx, "tcp", p.target.String())
		if err == nil || p.remote.Type != Relay || !errors.Is(err, syscall.ECONNREFUSED) {
			return conn, err
		}
		// The peer's TURN server refuses us until the peer has installed
		// its permission for our address, which it does when its Connect
		// starts, up to a second after ours (and sooner than that when
		// our direct paths all fail fast, say on resets): try again.
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(relayRetry):
		}
	}
}

// relayRetry paces dials to a peer's relay that its server refused.
const relayRetry = 200 * time.Millisecond

func (p *path) onMessage(m *stun.Message) (done bool, err error) {
	switch m.Type.Class {
	case stun.ClassRequest:
		if m.Type.Method != stun.MethodBinding {
			return false, errUnexpected
		}
		req, err := parseRequest(m)
		if err != nil {
			return false, err
		}
		if err := p.authenticate(req); err != nil {
			return false, err
		}
		return false, p.onRequest(req)
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		return p.onResponse(m)
	case stun.ClassIndication:
		if !m.Contains(attrSelected) {
			return false, nil // a keepalive
		}
		req, err := parseRequest(m)
		if err != nil {
			return false, err
		}
		if err := p.authenticate(req); err != nil {
			return false, err
		}
		if !p.nominated {
			return false, fmt.Errorf("%w: switch before nomination", errUnexpected)
		}
		return true, nil
	}
	return false, errUnexpected
}

var (
	errUnexpected = errors.New("unexpected STUN message")
	errIntegrity  = errors.New("MESSAGE-INTEGRITY mismatch")
	errCredential = errors.New("the peer's check failed authentication (USERNAME or MESSAGE-INTEGRITY)")
)

// authenticate checks that a message from the peer names both ufrags and
// carries integrity under our password.
func (p *path) authenticate(req request) error {
	if req.localUfrag != p.c.s.ufrag || req.remoteUfrag != p.c.remote.Ufrag {
		return errCredential
	}
	if checkIntegrity(req.msg, p.c.s.pwd) != nil {
		return errCredential // dropped like an unknown peer: we never answer a bad MAC
	}
	return nil
}

// onRequest answers an authenticated check, resolving role conflicts
// (RFC 8445 section 7.3.1.1), and sends our triggered check.
func (p *path) onRequest(req request) error {
	s := p.c.s
	ctrl := s.ctrl.Load()
	switch {
	case ctrl && req.controlling:
		if s.tieBreaker >= req.tieBreaker {
			return p.respondError(req.msg, stun.CodeRoleConflict)
		}
		p.c.switchRole(false)
	case !ctrl && !req.controlling:
		if s.tieBreaker >= req.tieBreaker {
			p.c.switchRole(true)
		} else {
			return p.respondError(req.msg, stun.CodeRoleConflict)
		}
	}
	if req.useCandidate && req.controlling && !s.ctrl.Load() {
		if !p.valid {
			p.deferred = req.msg // answered when our own check succeeds
			return p.triggeredCheck()
		}
		if err := p.respondSuccess(req.msg); err != nil {
			return err
		}
		p.nominated = true
		return nil
	}
	if err := p.respondSuccess(req.msg); err != nil {
		return err
	}
	return p.triggeredCheck()
}

func (p *path) triggeredCheck() error {
	if p.sentCheck || p.nominated {
		return nil
	}
	return p.sendCheck(false)
}

func (p *path) respondSuccess(req *stun.Message) error {
	from := addrPortOf(p.conn.RemoteAddr())
	m, err := newSuccess(req, from, p.c.s.pwd)
	if err != nil {
		return err
	}
	return p.write(m, nil)
}

func (p *path) respondError(req *stun.Message, code stun.ErrorCode) error {
	m, err := newErrorResponse(req, code, p.c.s.pwd)
	if err != nil {
		return err
	}
	return p.write(m, nil)
}

func (p *path) onResponse(m *stun.Message) (done bool, err error) {
	p.mu.Lock()
	kind, ok := p.txs[m.TransactionID]
	delete(p.txs, m.TransactionID)
	p.mu.Unlock()
	if !ok {
		return false, nil // not ours, or answered already
	}
	if checkIntegrity(m, p.c.remote.Pwd) != nil {
		return false, errIntegrity
	}
	if m.Type.Class == stun.ClassErrorResponse {
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(m); err != nil {
			return false, fmt.Errorf("%w: error response without a code", errUnexpected)
		}
		if code.Code == stun.CodeRoleConflict && !kind.nominate {
			// RFC 8445 section 7.2.5.1: take the other role and check again.
			p.c.switchRole(!kind.controlling)
			return false, p.sendCheck(false)
		}
		return false, fmt.Errorf("%w: error %d %s", errUnexpected, code.Code, code.Reason)
	}
	if kind.nominate {
		// Our side of the connection switches to raw data after this.
		s := p.c.s
		sw, err := newSwitch(s.ufrag, p.c.remote.Ufrag, p.c.remote.Pwd)
		if err != nil {
			return false, err
		}
		return true, p.write(sw, nil)
	}
	if !p.valid {
		p.valid = true
		_ = p.conn.SetReadDeadline(time.Time{}) // now it waits for nomination
		p.c.report(p, evValid, nil)
	}
	if p.deferred != nil {
		req := p.deferred
		p.deferred = nil
		if err := p.respondSuccess(req); err != nil {
			return false, err
		}
		p.nominated = true
	}
	return false, nil
}

// failure turns an error into a PathError with a reason a user can read.
func (p *path) failure(err error) *PathError {
	pe := &PathError{Path: p.name, Err: err}
	var ne net.Error
	switch {
	case err == nil:
		pe.Reason = ReasonUnknown
	case p.isShut(), errors.Is(err, context.Canceled):
		pe.Reason, pe.Err = ReasonCanceled, nil
	case errors.Is(err, errTURNUnreachable):
		pe.Reason = ReasonTURNUnreachable
	case errors.Is(err, errIntegrity), errors.Is(err, errCredential):
		pe.Reason = ReasonIntegrity
	case errors.Is(err, errSOBusy), p.so && (errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)):
		pe.Reason = ReasonCanceled // nothing wrong with the path: bounded, or the peer's SYN came in first (dialSO)
	case errors.Is(err, syscall.ECONNREFUSED):
		pe.Reason = ReasonRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
		pe.Reason = ReasonNoRoute
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		pe.Reason = ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		pe.Reason = ReasonRejected
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		pe.Reason = ReasonReset
	case errors.Is(err, errFrame), errors.Is(err, errUnexpected):
		pe.Reason = ReasonProtocol
	case p.relay != nil:
		pe.Reason = ReasonTURN // a refused Connect or ConnectionBind
	}
	return pe
}

func (p *path) isShut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shut
}
