package ice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/turn/v2"
)

// relay is one RFC 6062 TCP allocation on a TURN server, reached over TCP
// or TLS. The control connection carries the allocation (kept alive by the
// pion client's refresh timers); every relayed peer connection is a separate
// data connection to the server, bound with ConnectionBind.
//
// pion/turn v2 facts this works around (see ../shared/notes/dependencies.md):
// Client.DialTCP is broken, so data connections are dialed here and passed
// to DialTCPWithConn / AcceptTCPWithConn; a pending AcceptTCPWithConn is not
// woken by Close, so the accept timer is fired first; more than ten
// unaccepted connection attempts block the client's read loop, so one
// goroutine accepts continuously; BindConnection reads the server's answer
// with single Reads, so data connections read it with io.ReadFull.
type relay struct {
	srv     server
	log     *slog.Logger
	relayed netip.AddrPort // the allocation's relayed transport address
	mapped  netip.AddrPort // this host's address as the TURN server sees it (may be zero)

	ctrl       net.Conn
	client     *turn.Client
	dialServer func(ctx context.Context) (net.Conn, error)
	accept     func(net.Conn) (net.Addr, error)
	connect    func(conn net.Conn, to netip.AddrPort) error
	permit     func(addrs []netip.Addr) error
	closeAlloc func()
	stopAccept func()

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	incoming func(conn net.Conn, from netip.AddrPort) // nil: close incoming connections
}

// allocate connects to srv and makes a TCP allocation. The error is a
// *ServerError.
func allocate(ctx context.Context, cfg *Config, srv server) (*relay, error) {
	fail := func(r Reason, err error) (*relay, error) {
		return nil, &ServerError{Server: srv.url, Reason: r, Err: err}
	}
	ctrl, client, dial, reason, err := turnClient(ctx, cfg, srv)
	if err != nil {
		return fail(reason, err)
	}
	r := &relay{srv: srv, log: cfg.Logger.With("turn", srv.url), ctrl: ctrl, client: client, dialServer: dial}
	r.ctx, r.cancel = context.WithCancel(context.Background())

	// pion's calls take no context: run them aside and give up on ctx.
	res := make(chan allocation, 1)
	go func() { res <- r.allocateTCP(client) }()
	var out allocation
	abandoned := false
	select {
	case out = <-res:
	case <-ctx.Done():
		out.err, abandoned = ctx.Err(), true
	}
	if out.err != nil {
		r.cancel()
		ctrl.Close() // wakes the Listen loop
		client.Close()
		if abandoned {
			if late := <-res; late.err == nil {
				_ = late.close() // the allocation finished after all: release it
			}
		}
		reason := ReasonTURN
		switch {
		case abandoned:
			reason = ReasonTimeout
		case strings.Contains(out.err.Error(), "401"):
			reason = ReasonTURNAuth
		}
		return fail(reason, out.err)
	}
	r.relayed, r.mapped = out.relayed, out.mapped
	r.closeAlloc = func() { _ = out.close() }
	if !r.relayed.IsValid() {
		r.close()
		return fail(ReasonTURN, errors.New("no relayed address in the allocation"))
	}
	r.wg.Add(1)
	go r.acceptLoop()
	return r, nil
}

// turnClient opens the control connection to a TURN server (TLS for
// turns:) and a listening pion client on it; dial opens further
// connections to the server (ConnectionBind, RFC 6062). A failure comes
// with its reason.
func turnClient(ctx context.Context, cfg *Config, srv server) (ctrl net.Conn, client *turn.Client,
	dial func(context.Context) (net.Conn, error), reason Reason, err error) {
	ip, err := resolveServer(ctx, srv)
	if err != nil {
		return nil, nil, nil, ReasonTURNUnreachable, err
	}
	addr := netip.AddrPortFrom(ip, uint16(srv.port)).String()
	// The pion/turn v2 client resolves its server address as "udp4" and
	// uses it only as the destination of its transactions, which our
	// STUNConn over the TCP control connection ignores: an IPv6 server
	// gets an IPv4 label in its place (label). The relayed address is of
	// the family the server allocates by default, IPv4 (RFC 6156: pion v2
	// cannot send REQUESTED-ADDRESS-FAMILY, so an IPv6 relay cannot be
	// asked for).
	label := addr
	if !ip.Is4() {
		label = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(srv.port)).String()
	}
	dial = func(ctx context.Context) (net.Conn, error) {
		c, err := cfg.DialContext(ctx, "tcp", addr)
		if err != nil || !srv.tls {
			return c, err
		}
		tc, err := tlsClient(ctx, cfg, srv, c)
		if err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	if ctrl, err = dial(ctx); err != nil {
		return nil, nil, nil, ReasonTURNUnreachable, err
	}
	client, err = turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: label,
		TURNServerAddr: label,
		Username:       srv.user,
		Password:       srv.password,
		RTO:            time.Second, // over TCP a retransmission only helps a lost server
		Conn:           turn.NewSTUNConn(ctrl),
		LoggerFactory:  pionLogger{cfg.Logger},
	})
	if err != nil {
		ctrl.Close()
		return nil, nil, nil, ReasonTURN, err
	}
	if err := client.Listen(); err != nil {
		client.Close()
		ctrl.Close()
		return nil, nil, nil, ReasonTURN, err
	}
	return ctrl, client, dial, 0, nil
}

// allocation is the result of allocateTCP.
type allocation struct {
	relayed, mapped netip.AddrPort
	close           func() error // releases the allocation
	err             error
}

// allocateTCP asks the server for a TCP allocation (RFC 6062) and this
// host's mapped address, and sets r's relay operations on it. It blocks
// (pion's calls take no context).
func (r *relay) allocateTCP(client *turn.Client) allocation {
	alloc, err := client.AllocateTCP()
	if err != nil {
		return allocation{err: err}
	}
	out := allocation{relayed: addrPortOf(alloc.Addr()), close: alloc.Close}
	if m, err := client.SendBindingRequestTo(client.TURNServerAddr()); err == nil {
		out.mapped = addrPortOf(m)
	}
	r.accept = func(c net.Conn) (net.Addr, error) {
		tc, err := alloc.AcceptTCPWithConn(c)
		if err != nil {
			return nil, err
		}
		return tc.RemoteAddr(), nil
	}
	r.connect = func(c net.Conn, to netip.AddrPort) error {
		_, err := alloc.DialTCPWithConn(c, "tcp", net.TCPAddrFromAddrPort(to))
		return err
	}
	r.permit = func(ips []netip.Addr) error {
		addrs := make([]net.Addr, len(ips))
		for i, ip := range ips {
			addrs[i] = &net.TCPAddr{IP: ip.AsSlice()}
		}
		return alloc.CreatePermissions(addrs...)
	}
	r.stopAccept = func() { _ = alloc.SetDeadline(time.Now()) }
	return out
}

// setIncoming directs incoming relayed connections to f (nil: close them).
func (r *relay) setIncoming(f func(conn net.Conn, from netip.AddrPort)) {
	r.mu.Lock()
	r.incoming = f
	r.mu.Unlock()
}

// acceptLoop binds every ConnectionAttempt. The data connection is dialed
// only when an attempt arrives (bindConn dials on its first Write), so no
// idle connection waits at the server.
func (r *relay) acceptLoop() {
	defer r.wg.Done()
	for r.ctx.Err() == nil {
		bc := &bindConn{dial: func() (net.Conn, error) { return r.dialServer(r.ctx) }}
		peer, err := r.accept(bc)
		if err != nil {
			bc.Close()
			if r.ctx.Err() != nil {
				return
			}
			r.log.Debug("relay accept failed", "err", err)
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		from := addrPortOf(peer)
		r.mu.Lock()
		f := r.incoming
		r.mu.Unlock()
		if f == nil {
			bc.conn.Close()
			continue
		}
		f(bc.conn, from)
	}
}

// dial opens a relayed connection from this allocation to a peer address
// (RFC 6062 Connect + ConnectionBind). It gives up when ctx ends; pion's
// transaction then finishes in the background, owned by r.
func (r *relay) dial(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c, err := r.dialServer(ctx)
		if err != nil {
			res <- result{err: fmt.Errorf("%w: %w", errTURNUnreachable, err)}
			return
		}
		bc := &bindConn{conn: c}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = r.connect(bc, to)
		stop()
		if err != nil {
			c.Close()
			res <- result{err: err}
			return
		}
		res <- result{conn: c}
	}()
	select {
	case out := <-res:
		return out.conn, out.err
	case <-ctx.Done():
		go func() {
			if out := <-res; out.conn != nil {
				out.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

var errTURNUnreachable = errors.New("TURN server unreachable")

// permitPeers installs permissions for the peer's addresses.
func (r *relay) permitPeers(ctx context.Context, ips []netip.Addr) error {
	if len(ips) == 0 {
		return nil
	}
	res := make(chan error, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		res <- r.permit(ips)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close releases the allocation (a Refresh with lifetime 0), closes the
// control connection and waits for every goroutine of the relay.
func (r *relay) close() {
	r.once.Do(func() {
		r.cancel()
		if r.stopAccept != nil {
			r.stopAccept()
		}
		if r.closeAlloc != nil {
			r.closeAlloc()
		}
		r.client.Close() // fails pending transactions
		r.ctrl.Close()
		r.wg.Wait()
	})
}

// bindConn is the data connection handed to pion for ConnectionBind. pion
// wants a transport.TCPConn; this one dials lazily on the first Write (so an
// accept waits with no connection open), reads the bind answer with
// io.ReadFull, and lets the connection go on as a plain net.Conn afterwards.
type bindConn struct {
	dial   func() (net.Conn, error)
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (b *bindConn) get() (net.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, net.ErrClosed
	}
	if b.conn == nil {
		c, err := b.dial()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTURNUnreachable, err)
		}
		b.conn = c
	}
	return b.conn, nil
}

func (b *bindConn) Read(p []byte) (int, error) {
	c, err := b.get()
	if err != nil {
		return 0, err
	}
	return io.ReadFull(c, p)
}

func (b *bindConn) Write(p []byte) (int, error) {
	c, err := b.get()
	if err != nil {
		return 0, err
	}
	return c.Write(p)
}

func (b *bindConn) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil {
		return b.conn.Close()
	}
	return nil
}

func (b *bindConn) LocalAddr() net.Addr                      { return &net.TCPAddr{} }
func (b *bindConn) RemoteAddr() net.Addr                     { return &net.TCPAddr{} }
func (b *bindConn) SetDeadline(t time.Time) error            { return nil }
func (b *bindConn) SetReadDeadline(t time.Time) error        { return nil }
func (b *bindConn) SetWriteDeadline(t time.Time) error       { return nil }
func (b *bindConn) CloseRead() error                         { return nil }
func (b *bindConn) CloseWrite() error                        { return nil }
func (b *bindConn) ReadFrom(r io.Reader) (int64, error)      { return io.Copy(struct{ io.Writer }{b}, r) }
func (b *bindConn) SetLinger(int) error                      { return nil }
func (b *bindConn) SetKeepAlive(bool) error                  { return nil }
func (b *bindConn) SetKeepAlivePeriod(d time.Duration) error { return nil }
func (b *bindConn) SetNoDelay(bool) error                    { return nil }
func (b *bindConn) SetWriteBuffer(int) error                 { return nil }
func (b *bindConn) SetReadBuffer(int) error                  { return nil }

func resolveServer(ctx context.Context, srv server) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(srv.host); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", srv.host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return ips[0], nil
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func tlsClient(ctx context.Context, cfg *Config, srv server, c net.Conn) (*tls.Conn, error) {
	tcfg := &tls.Config{}
	if cfg.TLSConfig != nil {
		tcfg = cfg.TLSConfig.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = srv.host
	}
	tc := tls.Client(c, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
