package proxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// from returns a ClientConfig whose connections come from the loopback
// address ip (127.0.0.2, ...): another client to the proxy's limits.
func from(ip string) *ClientConfig {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &ClientConfig{DialContext: d.DialContext}
}

// TestHostileItems: oversized, forged and malformed requests are refused
// and counted, and store nothing.
func TestHostileItems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mem := &signaling.MemoryTransport{Notify: true}
	srv, addr := testServer(t, mem, nil)
	cl := testClient(t, addr, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	good := newItem(t, priv, "q0", 1, "ok")

	forged := toWire(good)
	forged.V = []byte("changed")
	badKey := toWire(good)
	badKey.K = badKey.K[:31]
	big := toWire(good)
	big.V = bytes.Repeat([]byte("x"), 3000)
	for name, body := range map[string][]byte{
		"forged":    mustJSON(forged),
		"short key": mustJSON(badKey),
		"too large": mustJSON(big),
		"not json":  []byte("{\"k\":"),
		"huge body": bytes.Repeat([]byte(" "), 64<<10),
	} {
		if code := rawPost(t, cl, "/v1/put", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, code)
		}
	}
	for name, q := range map[string]string{
		"short key": "k=00&salt=",
		"not hex":   "k=" + strings.Repeat("zz", 32) + "&salt=",
		"long salt": "k=" + strings.Repeat("00", 32) + "&salt=" + strings.Repeat("00", 65),
	} {
		resp, err := cl.hc.Get(cl.url("/v1/get?" + q))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("get %s: %d, want 400", name, resp.StatusCode)
		}
	}
	for name, body := range map[string]string{
		"bad target": `{"targets":["00"]}`,
		"too many":   fmt.Sprintf(`{"targets":[%s"00"]}`, strings.Repeat(`"`+strings.Repeat("00", 20)+`",`, 300)),
		"not json":   `[`,
	} {
		if code := rawPost(t, cl, "/v1/listen", []byte(body)); code != http.StatusBadRequest {
			t.Errorf("listen %s: %d, want 400", name, code)
		}
	}
	if st := srv.Stats(); st.BadRequests != 11 || st.Puts != 0 {
		t.Fatalf("stats %+v, want 11 bad requests and no put", st)
	}
	if _, err := mem.Get(ctx, good.Key, good.Salt); err == nil {
		t.Fatal("something was stored")
	}
	if err := cl.Put(ctx, good); err != nil {
		t.Fatalf("a good put after the bad ones: %v", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFloods: a client over its request rate, and puts at one target over
// the target's rate, are answered 429 and counted; another client keeps
// working.
func TestFloods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, addr := testServer(t, &signaling.MemoryTransport{}, func(c *ServerConfig) {
		c.RequestRate, c.RequestBurst = 5, 20
		c.TargetPutRate, c.TargetPutBurst = 1, 5
	})
	flood := testClient(t, addr, nil)
	_, priv, _ := ed25519.GenerateKey(nil)
	var limited int
	for i := 0; i < 100; i++ {
		_, err := flood.Get(ctx, [32]byte{1}, []byte(fmt.Sprint(i)))
		if err != nil && strings.Contains(err.Error(), "429") {
			limited++
		}
	}
	if limited < 70 {
		t.Fatalf("%d of 100 gets limited, want most", limited)
	}
	other := testClient(t, addr, from("127.0.0.2"))
	it := newItem(t, priv, "q0", 1, "still works")
	if err := other.Put(ctx, it); err != nil {
		t.Fatalf("another client during the flood: %v", err)
	}
	// One target, many puts from several clients.
	refused := 0
	for i := 0; i < 15; i++ {
		cl := other
		if i%2 == 1 {
			cl = testClient(t, addr, from(fmt.Sprintf("127.0.0.%d", 3+i)))
		}
		// Raw posts: Client.Put tries a refused put again.
		switch code := rawPost(t, cl, "/v1/put", mustJSON(toWire(newItem(t, priv, "q9", int64(i+1), "x")))); code {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusNoContent:
		default:
			t.Fatalf("put %d: %d", i, code)
		}
	}
	if refused < 8 {
		t.Fatalf("%d of 15 puts at one target refused, want most past the burst of 5", refused)
	}
	// Client.Put waits out the target's rate and stores.
	if err := other.Put(ctx, newItem(t, priv, "q9", 100, "later")); err != nil {
		t.Fatalf("a put past the target's rate, tried again: %v", err)
	}
	if st := srv.Stats(); st.RateLimited < int64(limited+refused) {
		t.Fatalf("stats %+v, want %d rate limited", st, limited+refused)
	}
}

// TestConnLimits: connections past the per-IP bound are closed at once,
// clients that never finish a request are closed after ReadTimeout, and
// streams past their bounds are refused; another client keeps working.
func TestConnLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, addr := testServer(t, &signaling.MemoryTransport{Notify: true}, func(c *ServerConfig) {
		c.MaxConnsPerIP, c.MaxStreamsPerIP, c.MaxTargets = 4, 2, 4
		c.ReadTimeout = 300 * time.Millisecond
	})
	a, _ := ParseAddr(addr)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	closed := 0
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", a.HostPort)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The four held are slow clients: closed after ReadTimeout; the six
	// refused are closed at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err == nil {
				mu.Lock()
				closed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if closed != 10 || time.Since(start) > 3*time.Second {
		t.Fatalf("%d of 10 connections closed in %v", closed, time.Since(start))
	}
	if st := srv.Stats(); st.ConnsRefused != 6 {
		t.Fatalf("stats %+v, want 6 connections refused", st)
	}

	// Streams: two per IP; a third is refused.
	cl := testClient(t, addr, from("127.0.0.2"))
	_, priv, _ := ed25519.GenerateKey(nil)
	for i := 0; i < 2; i++ {
		s := cl.Subscribe()
		defer s.Close()
		tg := newItem(t, priv, fmt.Sprint(i), 1, "x").Target()
		s.Set([][20]byte{tg})
		waitFor(t, 5*time.Second, "a stream", func() bool { return s.Listening(tg) })
	}
	body := fmt.Sprintf(`{"targets":["%s"]}`, strings.Repeat("11", 20))
	if code := rawPost(t, cl, "/v1/listen", []byte(body)); code != http.StatusServiceUnavailable {
		t.Fatalf("a third stream: %d, want 503", code)
	}
	if st := srv.Stats(); st.StreamsRefused != 1 || st.Streams != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := testClient(t, addr, from("127.0.0.3")).Put(ctx, newItem(t, priv, "q", 1, "ok")); err != nil {
		t.Fatal(err)
	}
}

// TestSlowReader: a listen stream whose client stops reading is closed
// after WriteTimeout (counted), the notices it had no room for are
// dropped (counted), and the proxy keeps serving others.
func TestSlowReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := &signaling.MemoryTransport{Notify: true}
	srv, addr := testServer(t, mem, func(c *ServerConfig) { c.WriteTimeout = 300 * time.Millisecond })
	a, _ := ParseAddr(addr)
	_, priv, _ := ed25519.GenerateKey(nil)
	target := newItem(t, priv, "q0", 1, "x").Target()

	// A raw HTTP/1.1 stream with a tiny receive buffer, never read.
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	raw, err := tls.DialWithDialer(d, "tcp", a.HostPort, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	body := fmt.Sprintf(`{"targets":["%x"]}`, target[:])
	fmt.Fprintf(raw, "POST /v1/listen HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	waitFor(t, 5*time.Second, "the stream", func() bool { return srv.Stats().Streams == 1 })
	big := strings.Repeat("v", 900)
	for i := 2; srv.Stats().SlowClosed == 0; i++ {
		if ctx.Err() != nil {
			t.Fatalf("the stream was never closed: %+v", srv.Stats())
		}
		_ = mem.Put(ctx, newItem(t, priv, "q0", int64(i), big))
		if i%200 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(t, 5*time.Second, "the stream's end", func() bool { return srv.Stats().Streams == 0 })
	if st := srv.Stats(); st.NotifyDropped == 0 {
		t.Fatalf("no notice counted as dropped: %+v", st)
	}
	if err := testClient(t, addr, nil).Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
