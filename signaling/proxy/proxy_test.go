package proxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/dht"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer runs a Server on loopback over backend (a Serve DHT node of
// its own when nil) and returns it with its pinned address.
func testServer(t testing.TB, backend signaling.Transport, mod func(*ServerConfig)) (*Server, string) {
	t.Helper()
	if backend == nil {
		d, err := dht.New(&dht.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Serve: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		backend = d
	}
	cert, pin, err := SelfSigned(filepath.Join(t.TempDir(), "proxy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ServerConfig{Backend: backend, Certificate: cert}
	if mod != nil {
		mod(cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, Addr{HostPort: l.Addr().String(), Pin: pin}.String()
}

func testClient(t testing.TB, addr string, c *ClientConfig) *Client {
	t.Helper()
	cl, err := NewClient(addr, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func newItem(t testing.TB, priv ed25519.PrivateKey, salt string, seq int64, v string) signaling.Item {
	t.Helper()
	it, err := signaling.NewItem(priv, []byte(salt), seq, []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// TestRoundTrip: a put through the proxy is read back through it and
// from the DHT node behind it; a listen stream is Listening to targets the
// proxy's node stores and delivers a put made by another client, once.
func TestRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, addr := testServer(t, nil, nil)
	a, b := testClient(t, addr, nil), testClient(t, addr, nil)
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	it := newItem(t, priv, "q0", 1, "hello")
	if err := a.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, it.Key, it.Salt)
	if err != nil || string(got.Value) != "hello" {
		t.Fatalf("get: %v %q", err, got.Value)
	}
	if _, err := b.Get(ctx, it.Key, []byte("other")); !errors.Is(err, signaling.ErrNotFound) {
		t.Fatalf("get of nothing: %v, want ErrNotFound", err)
	}

	sub := b.Subscribe()
	defer sub.Close()
	next := newItem(t, priv, "q1", 5, "notified")
	sub.Set([][20]byte{next.Target()})
	waitFor(t, 5*time.Second, "the stream to be listening", func() bool { return sub.Listening(next.Target()) })
	if err := a.Put(ctx, next); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-sub.Updates():
		if string(n.Value) != "notified" || n.Seq != 5 {
			t.Fatalf("notified %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("no notification")
	}
	// The same put again is not delivered again.
	_ = a.Put(ctx, next)
	select {
	case n := <-sub.Updates():
		t.Fatalf("notified twice: %+v", n)
	case <-time.After(300 * time.Millisecond):
	}
	st := srv.Stats()
	if st.Puts < 2 || st.Gets != 2 || st.Found != 1 || st.Streams != 1 || st.Listened != 1 || st.Notified < 1 {
		t.Fatalf("stats %+v", st)
	}
	// One TLS connection carried every request of a client (HTTP/2).
	if cs := b.Stats(); cs.Conns != 1 || cs.Requests != 3 {
		t.Fatalf("client stats %+v, want 1 connection and 3 requests", cs)
	}
	// Changing the targets reopens the stream.
	other := newItem(t, priv, "q2", 1, "second")
	sub.Set([][20]byte{other.Target()})
	waitFor(t, 5*time.Second, "the new stream", func() bool {
		return sub.Listening(other.Target()) && !sub.Listening(next.Target())
	})
	if err := a.Put(ctx, other); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-sub.Updates():
		if string(n.Value) != "second" {
			t.Fatalf("notified %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("no notification on the new stream")
	}
}

// TestPin: a client whose pin is not the proxy's refuses it; an https://
// address is checked against the roots.
func TestPin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, addr := testServer(t, &signaling.MemoryTransport{Notify: true}, nil)
	a, _ := ParseAddr(addr)
	_, otherPin, _ := SelfSigned(filepath.Join(t.TempDir(), "other.pem"))
	wrong := testClient(t, Addr{HostPort: a.HostPort, Pin: otherPin}.String(), nil)
	if err := wrong.Ping(ctx); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("ping with the wrong pin: %v", err)
	}
	web := testClient(t, "https://"+a.HostPort, nil)
	if err := web.Ping(ctx); err == nil {
		t.Fatal("a self-signed certificate passed as web PKI")
	}
	right := testClient(t, addr, nil)
	if err := right.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSelfSignedKept: the certificate and its pin survive a restart.
func TestSelfSignedKept(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "proxy.pem")
	_, pin1, err := SelfSigned(p)
	if err != nil {
		t.Fatal(err)
	}
	_, pin2, err := SelfSigned(p)
	if err != nil || pin1 != pin2 {
		t.Fatalf("pin changed: %s %s %v", pin1, pin2, err)
	}
}

func TestParseAddr(t *testing.T) {
	pin := strings.Repeat("A", 43)
	for in, want := range map[string]string{
		"peerdrop-proxy://example.org:443#" + pin: "peerdrop-proxy://example.org:443#" + pin,
		"peerdrop-proxy://[::1]:8443#" + pin:      "peerdrop-proxy://[::1]:8443#" + pin,
		"https://example.org":                     "https://example.org:443",
		"https://example.org:8443/":               "https://example.org:8443",
		"example.org:8443":                        "https://example.org:8443",
	} {
		a, err := ParseAddr(in)
		if err != nil || a.String() != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{
		"peerdrop-proxy://example.org:443",       // no pin
		"peerdrop-proxy://example.org:443#short", // not a pin
		"https://example.org:443#" + pin,         // pin without the scheme
		"peerdrop-proxy://example.org#" + pin,    // no port
		"https://user@example.org:443",
		"",
	} {
		if a, err := ParseAddr(in); err == nil {
			t.Errorf("ParseAddr(%q) = %v, want an error", in, a)
		}
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawPost posts body to the proxy from a client of its own.
func rawPost(t testing.TB, cl *Client, path string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, cl.url(path), bytes.NewReader(body))
	resp, err := cl.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReconnect: after Reconnect (a network change) the client dials a new
// connection and its stream listens again.
func TestReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, addr := testServer(t, &signaling.MemoryTransport{Notify: true}, nil)
	a, b := testClient(t, addr, nil), testClient(t, addr, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	it := newItem(t, priv, "q0", 1, "x")
	sub := b.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{it.Target()})
	waitFor(t, 5*time.Second, "listening", func() bool { return sub.Listening(it.Target()) })
	b.Reconnect()
	waitFor(t, 5*time.Second, "a second connection, listening", func() bool {
		return b.Stats().Conns == 2 && sub.Listening(it.Target())
	})
	if err := a.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Updates():
	case <-ctx.Done():
		t.Fatal("no notification after Reconnect")
	}
}

// TestStreamStaysIdle: a listen stream outlives the write timeout and the
// keep-alive interval while nothing happens, and still notifies (on
// HTTP/2, a write deadline left set reset idle streams 10 s after their
// last line).
func TestStreamStaysIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, addr := testServer(t, &signaling.MemoryTransport{Notify: true}, func(c *ServerConfig) {
		c.WriteTimeout, c.KeepAlive = 100*time.Millisecond, 300*time.Millisecond
	})
	a, b := testClient(t, addr, nil), testClient(t, addr, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	it := newItem(t, priv, "q0", 1, "x")
	sub := b.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{it.Target()})
	waitFor(t, 5*time.Second, "listening", func() bool { return sub.Listening(it.Target()) })
	time.Sleep(time.Second)
	if !sub.Listening(it.Target()) || b.Stats().Requests != 1 || srv.Stats().SlowClosed != 0 {
		t.Fatalf("the idle stream ended: listening %v, client %+v, server %+v", sub.Listening(it.Target()), b.Stats(), srv.Stats())
	}
	if err := a.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Updates():
	case <-ctx.Done():
		t.Fatal("no notification on the idle stream")
	}
}
