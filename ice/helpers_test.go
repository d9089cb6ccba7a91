package ice

import (
	"context"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	loop4 = netip.MustParseAddrPort("127.0.0.1:0")
	loop6 = netip.MustParseAddrPort("[::1]:0")
)

// testConfig is a loopback-only config with short timeouts.
func testConfig(listen ...netip.AddrPort) *Config {
	if len(listen) == 0 {
		listen = []netip.AddrPort{loop4}
	}
	return &Config{
		ListenAddrs:  listen,
		CheckTimeout: 2 * time.Second,
		RelayDelay:   300 * time.Millisecond,
	}
}

func newTestAgent(t testing.TB, cfg *Config) *Agent {
	t.Helper()
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatalf("NewAgent: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

type side struct {
	agent *Agent
	sess  *Session
	conn  *Conn
	err   error
}

// connectPair runs a full exchange between two agents: both gather, swap
// descriptions (as signaling would), and connect concurrently. mutate, if
// set, edits the description each side receives.
func connectPair(t testing.TB, ctx context.Context, a, b *Agent, aCtrl, bCtrl bool, mutate func(toA, toB *Description)) (sa, sb *side) {
	t.Helper()
	sa, sb = &side{agent: a}, &side{agent: b}
	var err error
	if sa.sess, err = a.NewSession(ctx, aCtrl); err != nil {
		t.Fatalf("NewSession A: %v", err)
	}
	t.Cleanup(func() { sa.sess.Close() })
	if sb.sess, err = b.NewSession(ctx, bCtrl); err != nil {
		t.Fatalf("NewSession B: %v", err)
	}
	t.Cleanup(func() { sb.sess.Close() })
	da, db := roundTrip(t, sa.sess.Description()), roundTrip(t, sb.sess.Description())
	if mutate != nil {
		mutate(&db, &da)
	}
	sa.conn, sb.conn, sa.err, sb.err = connectBoth(ctx, sa.sess, sb.sess, da, db)
	for _, s := range []*side{sa, sb} {
		if s.conn != nil {
			t.Cleanup(func() { s.conn.Close() })
		}
	}
	return sa, sb
}

// connectBoth runs Connect on both sessions at once, as two devices do:
// sa with B's description db, sb with A's description da.
func connectBoth(ctx context.Context, sa, sb *Session, da, db Description) (ca, cb *Conn, errA, errB error) {
	done := make(chan struct{})
	go func() {
		cb, errB = sb.Connect(ctx, da)
		close(done)
	}()
	ca, errA = sa.Connect(ctx, db)
	<-done
	return ca, cb, errA, errB
}

// roundTrip passes a description through its text form, as signaling does.
func roundTrip(t testing.TB, d Description) Description {
	t.Helper()
	text, err := d.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText: %v", err)
	}
	out, err := ParseDescription(text)
	if err != nil {
		t.Fatalf("ParseDescription(%q): %v", text, err)
	}
	return out
}

// exchange checks that bytes flow both ways, in order, across the link.
func exchange(t testing.TB, a, b io.ReadWriter, n int) {
	t.Helper()
	msg := make([]byte, n)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write(msg)
		errc <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	for i := range got {
		if got[i] != msg[i] {
			t.Fatalf("byte %d: got %d want %d", i, got[i], msg[i])
		}
	}
}

func haveIPv6() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
}
