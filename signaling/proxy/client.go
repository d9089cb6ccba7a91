package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// ClientStats counts a Client's traffic.
type ClientStats struct {
	Requests      int64 // puts, gets and listen streams opened
	Conns         int64 // TLS connections dialled
	BytesSent     int64 // on the TCP connections, TLS included
	BytesReceived int64
}

// Client is a signaling.Transport and signaling.Listener through a proxy
// Server. All its requests share one TLS connection (HTTP/2). Safe for
// concurrent use.
type Client struct {
	addr Addr
	hc   *http.Client
	rt   swapTransport
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests, conns, sent, received atomic.Int64

	mu   sync.Mutex
	subs map[*clientSub]bool
}

// NewClient returns a Client of the proxy at addr (see ParseAddr). It
// dials nothing until used.
func NewClient(addr string, c *ClientConfig) (*Client, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	cfg := c.withDefaults()
	dial := cfg.DialContext
	host, _, _ := net.SplitHostPort(a.HostPort)
	tc := &tls.Config{ServerName: host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if a.Pin != "" {
		// The certificate is self-signed: its key is what is checked.
		tc.InsecureSkipVerify = true
		tc.ServerName = ""
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || Pin(cs.PeerCertificates[0]) != a.Pin {
				return fmt.Errorf("proxy %s: the certificate's key does not match the pin", a.HostPort)
			}
			return nil
		}
	}
	cl := &Client{addr: a, log: cfg.Logger}
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	newTransport := func() *http.Transport {
		return &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				conn, err := dial(ctx, network, a.HostPort)
				if err != nil {
					return nil, err
				}
				cl.conns.Add(1)
				return &meteredConn{Conn: conn, sent: &cl.sent, received: &cl.received}, nil
			},
			TLSClientConfig:        tc,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  30 * time.Second,
			IdleConnTimeout:        5 * time.Minute,
			MaxResponseHeaderBytes: 8 << 10,
			Protocols:              &protos,
			HTTP2:                  &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 10 * time.Second},
		}
	}
	cl.rt.newTransport = newTransport
	cl.rt.cur.Store(newTransport())
	cl.hc = &http.Client{Transport: &cl.rt}
	return cl, nil
}

// swapTransport is an http.RoundTripper whose transport Reconnect
// replaces.
type swapTransport struct {
	cur          atomic.Pointer[http.Transport]
	newTransport func() *http.Transport
}

func (s *swapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return s.cur.Load().RoundTrip(r)
}

func (s *swapTransport) CloseIdleConnections() { s.cur.Load().CloseIdleConnections() }

// Name is the proxy's address, for errors and logs.
func (c *Client) Name() string { return "proxy " + c.addr.HostPort }

// Stats returns the Client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{Requests: c.requests.Load(), Conns: c.conns.Load(), BytesSent: c.sent.Load(), BytesReceived: c.received.Load()}
}

// Reconnect drops the Client's connection, after the device changed
// networks: the next request dials again, and the listen streams reopen
// at once (rather than after the dead connection's ping timeout).
func (c *Client) Reconnect() {
	c.mu.Lock()
	subs := make([]*clientSub, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	old := c.rt.cur.Swap(c.rt.newTransport())
	for _, s := range subs {
		s.restart()
	}
	// The old connection is idle once its streams and requests end.
	old.CloseIdleConnections()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-time.After(2 * time.Second):
		case <-c.ctx.Done():
		}
		old.CloseIdleConnections()
	}()
}

// Close ends the Client's streams and closes its connections.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.rt.CloseIdleConnections()
	return nil
}

func (c *Client) url(path string) string { return "https://" + c.addr.HostPort + path }

// do sends a request and returns the response body (bounded), or an error
// that says what the proxy answered.
func (c *Client) do(req *http.Request, want int) ([]byte, int, error) {
	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, plainErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if resp.StatusCode != want {
		return b, resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return b, resp.StatusCode, nil
}

// plainErr drops the method and URL that net/http puts in front of an
// error: the route's name says which proxy it was.
func plainErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Ping checks that the proxy answers.
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/"), nil)
	if err != nil {
		return err
	}
	_, _, err = c.do(req, http.StatusOK)
	return err
}

// Put implements signaling.Transport.
func (c *Client) Put(ctx context.Context, it signaling.Item) error {
	body, _ := json.Marshal(toWire(it))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v1/put"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// A put over a rate is tried again after the proxy's Retry-After
	// (at most a second; three tries): a lost answer costs a transfer.
	for try := 1; ; try++ {
		req.Body = io.NopCloser(bytes.NewReader(body))
		_, code, err := c.do(req, http.StatusNoContent)
		if err == nil {
			return nil
		}
		if code != http.StatusTooManyRequests || try == 3 {
			return fmt.Errorf("%w: %v", signaling.ErrNotStored, err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", signaling.ErrNotStored, err)
		}
	}
}

// Get implements signaling.Transport. The item is checked here too.
func (c *Client) Get(ctx context.Context, key [32]byte, salt []byte) (signaling.Item, error) {
	u := c.url("/v1/get?k=" + hex.EncodeToString(key[:]) + "&salt=" + hex.EncodeToString(salt))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return signaling.Item{}, err
	}
	b, code, err := c.do(req, http.StatusOK)
	if code == http.StatusNotFound {
		return signaling.Item{}, signaling.ErrNotFound
	}
	if err != nil {
		return signaling.Item{}, err
	}
	it, err := decodeItem(b)
	if err != nil || it.Key != key || !bytes.Equal(it.Salt, salt) {
		return signaling.Item{}, fmt.Errorf("proxy %s: a bad item for the get", c.addr.HostPort)
	}
	return it, nil
}

// Subscribe implements signaling.Listener: a listen stream, open while
// the subscription has targets and reopened when they change.
func (c *Client) Subscribe() signaling.Subscription {
	s := &clientSub{c: c, updates: make(chan signaling.Item, 64), wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[*clientSub]bool)
	}
	c.subs[s] = true
	c.mu.Unlock()
	c.wg.Add(1)
	go s.run()
	return s
}

// clientSub is a Client's subscription.
type clientSub struct {
	c       *Client
	updates chan signaling.Item
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu        sync.Mutex
	targets   [][20]byte
	gen       int                // bumped when targets change
	listening map[[20]byte]bool  // as the proxy last said, for the live stream
	seen      map[[20]byte]int64 // highest seq delivered
}

func (s *clientSub) Set(targets [][20]byte) {
	ts := slices.Clone(targets)
	slices.SortFunc(ts, func(a, b [20]byte) int { return bytes.Compare(a[:], b[:]) })
	ts = slices.Compact(ts)
	s.mu.Lock()
	if slices.Equal(ts, s.targets) {
		s.mu.Unlock()
		return
	}
	s.targets = ts
	s.gen++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *clientSub) Listening(target [20]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listening[target]
}

func (s *clientSub) Updates() <-chan signaling.Item { return s.updates }

func (s *clientSub) Close() {
	s.once.Do(func() {
		close(s.done)
		s.c.mu.Lock()
		delete(s.c.subs, s)
		s.c.mu.Unlock()
	})
}

// restart ends the current stream; run opens a new one at once.
func (s *clientSub) restart() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run keeps a stream open for the current targets.
func (s *clientSub) run() {
	defer s.c.wg.Done()
	backoff := time.Duration(0)
	for {
		s.mu.Lock()
		targets, gen := s.targets, s.gen
		s.mu.Unlock()
		if len(targets) == 0 {
			select {
			case <-s.done:
				return
			case <-s.c.ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		start := time.Now()
		err := s.stream(targets, gen)
		s.mu.Lock()
		s.listening = nil
		changed := s.gen != gen
		s.mu.Unlock()
		select {
		case <-s.done:
			return
		case <-s.c.ctx.Done():
			return
		default:
		}
		if changed {
			backoff = 0
			continue
		}
		if time.Since(start) > time.Minute {
			backoff = 0
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		var ra *retryError
		if errors.As(err, &ra) && ra.after > backoff {
			backoff = ra.after
		}
		s.c.log.Debug("proxy listen stream ended", "proxy", s.c.addr.HostPort, "err", err, "retry", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-s.done:
			t.Stop()
			return
		case <-s.c.ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return e.err.Error() }

// stream runs one listen stream until it fails, the targets change or the
// subscription ends.
func (s *clientSub) stream(targets [][20]byte, gen int) error {
	ctx, cancel := context.WithCancel(s.c.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	body, _ := json.Marshal(listenRequest{Targets: encodeTargets(targets)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url("/v1/listen"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	s.c.requests.Add(1)
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return plainErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return &retryError{retryAfter(resp.Header), fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))}
	}
	want := make(map[[20]byte]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	// Stop when the targets change: a new stream replaces this one.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				s.mu.Lock()
				changed := s.gen != gen
				s.mu.Unlock()
				if changed {
					cancel()
					return
				}
			}
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	for sc.Scan() {
		line, err := parseLine(sc.Bytes(), want)
		if err != nil {
			return fmt.Errorf("proxy %s: %w", s.c.addr.HostPort, err)
		}
		if line.listening != nil {
			s.mu.Lock()
			if s.gen == gen {
				s.listening = line.listening
			}
			s.mu.Unlock()
		}
		if it := line.item; it != nil {
			s.deliver(*it)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// deliver hands an item on unless one with its seq or a higher one was.
func (s *clientSub) deliver(it signaling.Item) {
	t := it.Target()
	s.mu.Lock()
	if s.seen == nil {
		s.seen = make(map[[20]byte]int64)
	}
	if seq, ok := s.seen[t]; ok && it.Seq <= seq {
		s.mu.Unlock()
		return
	}
	if len(s.seen) > 4*len(s.targets)+64 {
		clear(s.seen)
	}
	s.seen[t] = it.Seq
	s.mu.Unlock()
	select {
	case s.updates <- it:
	default: // missed: the target is still polled slowly
	}
}

// parsedLine is a checked line of a listen stream.
type parsedLine struct {
	listening map[[20]byte]bool
	item      *signaling.Item
}

// parseLine reads a stream line; targets and items must be among want.
func parseLine(b []byte, want map[[20]byte]bool) (parsedLine, error) {
	var l streamLine
	if err := json.Unmarshal(b, &l); err != nil {
		return parsedLine{}, fmt.Errorf("bad stream line: %v", err)
	}
	var out parsedLine
	if l.Listening != nil {
		ts, err := decodeTargets(*l.Listening, len(want))
		if err != nil {
			return parsedLine{}, fmt.Errorf("bad listening line: %v", err)
		}
		out.listening = make(map[[20]byte]bool, len(ts))
		for _, t := range ts {
			if !want[t] {
				return parsedLine{}, errors.New("listening to a target not asked for")
			}
			out.listening[t] = true
		}
	}
	if l.Item != nil {
		it, err := l.Item.item()
		if err != nil {
			return parsedLine{}, err
		}
		if !want[it.Target()] {
			return parsedLine{}, errors.New("an item at a target not asked for")
		}
		out.item = &it
	}
	return out, nil
}

// meteredConn counts the bytes of a connection.
type meteredConn struct {
	net.Conn
	sent, received *atomic.Int64
}

func (c *meteredConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.received.Add(int64(n))
	return n, err
}

func (c *meteredConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}
