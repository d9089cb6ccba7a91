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
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

func TestRoleConflict(t *testing.T) {
	for _, both := range []bool{true, false} {
		t.Run(fmt.Sprintf("both controlling=%v", both), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := newTestAgent(t, testConfig())
			b := newTestAgent(t, testConfig())
			sa, sb := connectPair(t, ctx, a, b, both, both, nil)
			if sa.err != nil || sb.err != nil {
				t.Fatalf("connect: A %v; B %v", sa.err, sb.err)
			}
			ca, cb := sa.conn.Selected().Controlling, sb.conn.Selected().Controlling
			if ca == cb {
				t.Fatalf("after the conflict both sides have controlling=%v", ca)
			}
			// The side with the larger tie-breaker must be controlling.
			if want := sa.sess.tieBreaker > sb.sess.tieBreaker; ca != want {
				t.Errorf("A controlling=%v, want %v (tie-breakers %x, %x)", ca, want, sa.sess.tieBreaker, sb.sess.tieBreaker)
			}
			exchange(t, sa.conn, sb.conn, 64<<10)
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(d *Description)
	}{
		{"password", func(d *Description) { d.Pwd = "AAAAAAAAAAAAAAAAAAAAAAAA" }},
		{"ufrag", func(d *Description) { d.Ufrag = "zzzzzzzz" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := newTestAgent(t, testConfig())
			b := newTestAgent(t, testConfig())
			start := time.Now()
			// A receives a corrupted copy of B's description.
			sa, sb := connectPair(t, ctx, a, b, true, false, func(toA, toB *Description) { tc.mutate(toA) })
			if sa.err == nil || sb.err == nil {
				t.Fatalf("connected with a wrong %s: A %v; B %v", tc.name, sa.err, sb.err)
			}
			for _, err := range []error{sa.err, sb.err} {
				var ce *ConnectError
				if !errors.As(err, &ce) || !errors.Is(err, ErrNoPath) {
					t.Fatalf("want a *ConnectError wrapping ErrNoPath, got %v", err)
				}
			}
			if el := time.Since(start); el > 2*a.cfg.CheckTimeout+time.Second {
				t.Errorf("failing took %v", el)
			}
			t.Logf("A: %v", sa.err)
			t.Logf("B: %v", sb.err)
		})
	}
}

// A fake peer answers checks with a success signed by the wrong password:
// the path fails with ReasonIntegrity.
func TestResponseIntegrity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf [maxFrame]byte
		frame, err := readFrame(c, &buf)
		if err != nil {
			return
		}
		m, err := decodeMessage(frame)
		if err != nil {
			return
		}
		res, _ := newSuccess(m, addrPortOf(c.RemoteAddr()), "BBBBBBBBBBBBBBBBBBBBBBBB")
		_, _ = c.Write(appendFrame(nil, res.Raw))
		_, _ = io.Copy(io.Discard, c)
	}()
	cfg := testConfig()
	cfg.CheckTimeout = 500 * time.Millisecond
	a := newTestAgent(t, cfg)
	s, err := a.NewSession(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fake := Description{Ufrag: "fake", Pwd: "CCCCCCCCCCCCCCCCCCCCCCCC", Candidates: []Candidate{{
		Foundation: "1", Priority: candidatePriority(Host, Passive, 1), Type: Host, TCPType: Passive, Addr: addrPortOf(ln.Addr()),
	}}}
	_, err = s.Connect(ctx, fake)
	var ce *ConnectError
	if !errors.As(err, &ce) || len(ce.Paths) != 1 || ce.Paths[0].Reason != ReasonIntegrity {
		t.Fatalf("want one path failed on integrity, got %v", err)
	}
	ln.Close()
	wg.Wait()
}

// Garbage, unknown ufrags, oversized frames and bad MACs sent to a listener
// are dropped without an answer, and the agent keeps working.
func TestHostileChecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newTestAgent(t, testConfig())
	s, err := a.NewSession(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ufrag := s.Description().Ufrag
	good := func(ufragL, pwd string) []byte {
		m, err := newRequest("peer", ufragL, pwd, checkParams{priority: 1, controlling: true, tieBreaker: 1})
		if err != nil {
			t.Fatal(err)
		}
		return appendFrame(nil, m.Raw)
	}
	corrupt := good(ufrag, s.pwd)
	corrupt[30] ^= 0xff
	for name, payload := range map[string][]byte{
		"garbage":       []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"oversized":     {0xff, 0xff, 0, 1, 0, 0},
		"tiny":          {0, 4, 1, 2, 3, 4},
		"unknown ufrag": good("nobodyhere", s.pwd),
		"bad password":  good(ufrag, "DDDDDDDDDDDDDDDDDDDDDDDD"),
		"corrupt":       corrupt,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", a.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := c.Read(make([]byte, 100))
			if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("want the connection closed with no answer, got %d bytes, %v", n, err)
			}
		})
	}
	// Still works.
	b := newTestAgent(t, testConfig())
	sa, sb := connectPair(t, ctx, a, b, false, true, nil)
	if sa.err != nil || sb.err != nil {
		t.Fatalf("connect after hostile input: A %v; B %v", sa.err, sb.err)
	}
}

// The peer answers nothing and then disappears mid-checks: Connect fails
// with the paths listed, after CheckTimeout, not at the ctx deadline.
func TestPeerVanishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.CheckTimeout = time.Second
	a := newTestAgent(t, cfg)
	b := newTestAgent(t, cfg)
	sb, err := b.NewSession(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := a.NewSession(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	go func() {
		time.Sleep(100 * time.Millisecond) // A's check is now waiting in B's session
		sb.Close()
		b.Close()
	}()
	start := time.Now()
	_, err = sa.Connect(ctx, roundTrip(t, sb.Description()))
	var ce *ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, ErrNoPath) || len(ce.Paths) == 0 {
		t.Fatalf("want ErrNoPath with paths, got %v", err)
	}
	if el := time.Since(start); el > cfg.CheckTimeout+time.Second {
		t.Errorf("took %v", el)
	}
	t.Log(err)
}

func TestConnectContext(t *testing.T) {
	a := newTestAgent(t, testConfig())
	sa, err := a.NewSession(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	// A peer that never answers: a listener that accepts and stays silent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	silent := Description{Ufrag: "peer", Pwd: "CCCCCCCCCCCCCCCCCCCCCCCC", Candidates: []Candidate{{
		Foundation: "1", Priority: 1, Type: Host, TCPType: Passive, Addr: addrPortOf(ln.Addr()),
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = sa.Connect(ctx, silent)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if _, err := sa.Connect(context.Background(), silent); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Connect: %v", err)
	}
}

func TestConcurrentSessions(t *testing.T) {
	const n = 100
	fdsBefore := openFDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.CheckTimeout = 10 * time.Second
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- onePair(ctx, a, b, i%2 == 0)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	a.Close()
	b.Close()
	if after := openFDs(t); after > fdsBefore {
		t.Errorf("%d file descriptors open before, %d after", fdsBefore, after)
	}
}

func onePair(ctx context.Context, a, b *Agent, aCtrl bool) error {
	sa, err := a.NewSession(ctx, aCtrl)
	if err != nil {
		return err
	}
	defer sa.Close()
	sb, err := b.NewSession(ctx, !aCtrl)
	if err != nil {
		return err
	}
	defer sb.Close()
	ca, cb, errA, errB := connectBoth(ctx, sa, sb, sa.Description(), sb.Description())
	if ca != nil {
		defer ca.Close()
	}
	if cb != nil {
		defer cb.Close()
	}
	if errA != nil || errB != nil {
		return fmt.Errorf("connect: A %v; B %v", errA, errB)
	}
	msg := []byte("hello over ICE-TCP")
	go func() { _, _ = ca.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(cb, got); err != nil || string(got) != string(msg) {
		return fmt.Errorf("exchange: %q %v", got, err)
	}
	return nil
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestConnNettest(t *testing.T) {
	a := newTestAgent(t, testConfig())
	b := newTestAgent(t, testConfig())
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sa, err := a.NewSession(ctx, true)
		if err != nil {
			return nil, nil, nil, err
		}
		sb, err := b.NewSession(ctx, false)
		if err != nil {
			sa.Close()
			return nil, nil, nil, err
		}
		ca, cb, errA, errB := connectBoth(ctx, sa, sb, sa.Description(), sb.Description())
		if err := errors.Join(errA, errB); err != nil {
			sa.Close()
			sb.Close()
			return nil, nil, nil, err
		}
		return ca, cb, func() {
			ca.Close()
			cb.Close()
			sa.Close()
			sb.Close()
		}, nil
	})
}

var _ = netip.AddrPort{}
