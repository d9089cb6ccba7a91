package peerdrop

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling/dht"
	"github.com/peerdrop/peerdrop/signaling/proxy"
	"github.com/peerdrop/peerdrop/transfer"
)

// proxyNet is a Serve DHT node with a signaling proxy in front, on
// loopback.
type proxyNet struct {
	boot  []netip.AddrPort // the DHT node, for devices with UDP
	addr  string           // the proxy's pinned address
	proxy *proxy.Server
}

func newProxyNet(t testing.TB) *proxyNet {
	t.Helper()
	d, err := dht.New(&dht.Config{Listen: loopback, Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	cert, pin, err := proxy.SelfSigned(filepath.Join(t.TempDir(), "proxy.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := proxy.NewServer(&proxy.ServerConfig{Backend: d, Certificate: cert})
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
			t.Errorf("proxy: %v", err)
		}
	})
	return &proxyNet{boot: []netip.AddrPort{d.Addr()}, addr: proxy.Addr{HostPort: l.Addr().String(), Pin: pin}.String(), proxy: s}
}

// udpBlocked is a bootstrap address where no DHT node answers: a device
// whose UDP goes nowhere.
var udpBlocked = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}

// TestProxyOnly: Alice's UDP reaches no DHT node, and she has a signaling
// proxy; Bob uses the DHT node behind the proxy over UDP. Files go both
// ways, Alice's signaling entirely through the proxy (its listen stream
// tells her of Bob's requests).
func TestProxyOnly(t *testing.T) {
	pn := newProxyNet(t)
	tn := &testNet{boot: pn.boot}
	alice := tn.node(t, "alice", func(c *Config) {
		c.Bootstrap = udpBlocked
		c.Proxies = []string{pn.addr}
	})
	bob := tn.node(t, "bob", nil)
	befriend(t, []*testNode{alice}, []*testNode{bob})
	converge(t, []*testNode{alice}, []*testNode{bob})
	converge(t, []*testNode{bob}, []*testNode{alice})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, dir := range [][2]*testNode{{alice, bob}, {bob, alice}} {
		from, to := dir[0], dir[1]
		src, data := file(t, t.TempDir(), "through the proxy.bin", 256<<10)
		out, err := from.SendFile(ctx, to.Account(), src)
		if err != nil {
			t.Fatal(err)
		}
		in := nextOffer(t, to, 15*time.Second)
		if err := in.Accept(transfer.Destination{}); err != nil {
			t.Fatal(err)
		}
		if err := out.Wait(ctx); err != nil {
			t.Fatalf("%s to %s: %v", from.home, to.home, err)
		}
		sameFile(t, filepath.Join(to.home, "downloads", "through the proxy.bin"), data)
	}
	st := alice.Stats()
	if st.DHT.Nodes != 0 || len(st.Proxies) != 1 || st.Proxies[0].Requests == 0 || st.Proxies[0].Conns != 1 {
		t.Fatalf("alice's stats: %d DHT nodes, proxies %+v; want none and one proxy connection", st.DHT.Nodes, st.Proxies)
	}
	if ps := pn.proxy.Stats(); ps.Puts == 0 || ps.Streams == 0 || ps.Notified == 0 {
		t.Fatalf("proxy stats %+v: want puts, a stream and a notification", ps)
	}
}

// TestNoRoute: with neither the DHT nor the proxy answering, a send fails
// with an error that names both.
func TestNoRoute(t *testing.T) {
	tn := &testNet{boot: udpBlocked}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, pin, _ := proxy.SelfSigned(filepath.Join(t.TempDir(), "p.pem"))
	alice := tn.node(t, "alice", func(c *Config) {
		c.Proxies = []string{proxy.Addr{HostPort: dead, Pin: pin}.String()}
	})
	bob := tn.node(t, "bob", nil)
	befriend(t, []*testNode{alice}, []*testNode{bob})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "f", 10)
	out, err := alice.SendFile(ctx, bob.Account(), src)
	if err == nil {
		err = out.Wait(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "dht: ") || !strings.Contains(err.Error(), "proxy "+dead) {
		t.Fatalf("send with no route: %v; want an error naming the DHT and the proxy", err)
	}
}
