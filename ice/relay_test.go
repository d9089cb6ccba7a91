package ice

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/turnserver"
)

func turnConfig(ts *turnserver.Server, mode Mode) *Config {
	cfg := testConfig()
	cfg.Mode = mode
	cfg.Servers = []Server{{URL: ts.TURNURL(), Username: ts.User, Password: ts.Password}}
	return cfg
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := addrPortOf(ln.Addr())
	ln.Close()
	return a
}

func TestConnectRelay(t *testing.T) {
	ts := turnserver.Start(t)
	for _, tc := range []struct {
		name         string
		modeA, modeB Mode
		breakHosts   bool // host candidates point to a closed port: only relays can work
	}{
		{"relay-only both", ModeRelayOnly, ModeRelayOnly, false},
		{"relay-only one side", ModeRelayOnly, ModeAll, false},
		{"no direct path", ModeAll, ModeAll, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			a := newTestAgent(t, turnConfig(ts, tc.modeA))
			b := newTestAgent(t, turnConfig(ts, tc.modeB))
			var mutate func(toA, toB *Description)
			if tc.breakHosts {
				dead := closedPort(t)
				mutate = func(toA, toB *Description) {
					for _, d := range []*Description{toA, toB} {
						for i, c := range d.Candidates {
							if c.Type == Host && c.TCPType == Passive {
								d.Candidates[i].Addr = dead
							}
						}
					}
				}
			}
			sa, sb := connectPair(t, ctx, a, b, true, false, mutate)
			if sa.err != nil || sb.err != nil {
				t.Fatalf("connect: A %v; B %v\ncoturn: %s", sa.err, sb.err, ts.Log())
			}
			selA, selB := sa.conn.Selected(), sb.conn.Selected()
			if !selA.Relayed || !selB.Relayed {
				t.Errorf("want a relayed path: A %+v, B %+v", selA, selB)
			}
			if tc.modeA == ModeRelayOnly {
				for _, c := range sa.sess.Description().Candidates {
					if c.Type != Relay || c.Related.IsValid() {
						t.Errorf("relay-only description reveals %v", c)
					}
				}
			}
			exchange(t, sa.conn, sb.conn, 1<<20)
			exchange(t, sb.conn, sa.conn, 1<<20)
			t.Logf("A: %s %v→%v (%s→%s) in %v", selA.Kind(), selA.LocalAddr, selA.RemoteAddr, selA.Local.Type, selA.Remote.Type, selA.Elapsed)
			t.Logf("B: %s %v→%v (%s→%s) in %v", selB.Kind(), selB.LocalAddr, selB.RemoteAddr, selB.Local.Type, selB.Remote.Type, selB.Elapsed)
		})
	}
}

func TestTURNFailures(t *testing.T) {
	ts := turnserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		server Server
		want   Reason
	}{
		{"wrong password", Server{URL: ts.TURNURL(), Username: ts.User, Password: "wrong"}, ReasonTURNAuth},
		{"unreachable", Server{URL: "turn:" + closedPort(t).String(), Username: "u", Password: "p"}, ReasonTURNUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Servers = []Server{tc.server}
			a := newTestAgent(t, cfg)
			s, err := a.NewSession(ctx, true)
			if err != nil {
				t.Fatalf("NewSession: %v (a failed server must not fail the session)", err)
			}
			defer s.Close()
			errs := s.ServerErrors()
			if len(errs) != 1 || errs[0].Reason != tc.want {
				t.Fatalf("server errors %v, want one with reason %q", errs, tc.want)
			}
			for _, c := range s.Description().Candidates {
				if c.Type == Relay {
					t.Errorf("relay candidate from a failed server: %v", c)
				}
			}

			cfg.Mode = ModeRelayOnly
			ro := newTestAgent(t, cfg)
			_, err = ro.NewSession(ctx, true)
			var ce *ConnectError
			if !errors.As(err, &ce) || !errors.Is(err, ErrNoPath) || len(ce.Servers) != 1 || ce.Servers[0].Reason != tc.want {
				t.Fatalf("relay-only with a failing server: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestRelayIPv6Server: a TURN server reached over IPv6 (coturn on [::1],
// relaying from 127.0.0.1) gives a relay, and two relay-only sides
// connect through it. Its relayed address is IPv4, the family servers
// allocate by default (the pion/turn v2 client cannot ask for another).
func TestRelayIPv6Server(t *testing.T) {
	if !haveIPv6() {
		t.Skip("no IPv6 on this host")
	}
	ts := turnserver.StartWith(t, turnserver.Options{IP: netip.MustParseAddr("::1"), RelayIP: netip.MustParseAddr("127.0.0.1")})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a := newTestAgent(t, turnConfig(ts, ModeRelayOnly))
	b := newTestAgent(t, turnConfig(ts, ModeRelayOnly))
	sa, sb := connectPair(t, ctx, a, b, true, false, nil)
	if sa.err != nil || sb.err != nil {
		t.Fatalf("connect through %s: A %v; B %v\ncoturn: %s", ts.TURNURL(), sa.err, sb.err, ts.Log())
	}
	if !sa.conn.Selected().Relayed || !sb.conn.Selected().Relayed {
		t.Fatalf("want a relayed path: %+v", sa.conn.Selected())
	}
	if ra := sa.conn.Selected().RemoteAddr; !ra.Addr().Is6() && !sb.conn.Selected().RemoteAddr.Addr().Is6() {
		t.Fatalf("neither side's relayed path runs over IPv6 to the server: %v / %v", ra, sb.conn.Selected().RemoteAddr)
	}
	exchange(t, sa.conn, sb.conn, 1<<20)
	exchange(t, sb.conn, sa.conn, 1<<20)
}
