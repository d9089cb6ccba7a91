package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// clientKey is what a client is counted as: its IP address, or its /64
// for IPv6 (one host's share of a network).
func clientKey(ap netip.AddrPort) netip.Addr {
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// limiters is a bounded set of token buckets by key. Buckets idle for
// longer than it takes to refill are dropped; when max keys hold full
// buckets, a new key is refused.
type limiters[K comparable] struct {
	rate  rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	m     map[K]*bucket
	sweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newLimiters[K comparable](r float64, burst, max int) *limiters[K] {
	return &limiters[K]{rate: rate.Limit(r), burst: burst, max: max, m: make(map[K]*bucket)}
}

// allow takes a token of key's bucket.
func (l *limiters[K]) allow(key K) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max || now.Sub(l.sweep) > time.Minute {
			l.sweep = now
			idle := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Second
			for k, b := range l.m {
				if now.Sub(b.last) > idle {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) >= l.max {
			return false
		}
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.m[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// counts is a bounded count of open things per client.
type counts struct {
	mu sync.Mutex
	m  map[netip.Addr]int
	n  int
}

// take counts one more for key unless key holds perKey or all hold max.
func (c *counts) take(key netip.Addr, perKey, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[netip.Addr]int)
	}
	if c.n >= max || c.m[key] >= perKey {
		return false
	}
	c.m[key]++
	c.n++
	return true
}

func (c *counts) release(key netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key]--; c.m[key] <= 0 {
		delete(c.m, key)
	}
	c.n--
}

func (c *counts) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// limitListener closes connections past perIP from one client or max in
// all, at once, before TLS.
type limitListener struct {
	net.Listener
	perIP, max int
	open       counts
	refused    *atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(addrPort(c.RemoteAddr()))
		if !l.open.take(key, l.perIP, l.max) {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { l.open.release(key) }}, nil
	}
}

// countedConn releases its count once, on Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
