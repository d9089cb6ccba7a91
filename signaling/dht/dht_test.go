package dht

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/peerdrop/peerdrop/signaling"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// testDHT starts n nodes on loopback, all bootstrapped from the first.
func testDHT(t testing.TB, n int, mod func(i int, c *Config)) []*Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nodes []*Node
	for i := 0; i < n; i++ {
		c := &Config{Listen: loopback}
		if i > 0 {
			c.Bootstrap = []netip.AddrPort{nodes[0].Addr()}
		}
		if mod != nil {
			mod(i, c)
		}
		d, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		nodes = append(nodes, d)
	}
	for _, d := range nodes[1:] {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Once more, now that everyone is known to the first node.
	for _, d := range nodes {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func TestDHTPutGet(t *testing.T) {
	nodes := testDHT(t, 8, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, priv, _ := ed25519.GenerateKey(nil)
	it, err := signaling.NewItem(priv, []byte("q0"), 1, []byte("hello dht"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := nodes[3].Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	putTook := time.Since(start)
	start = time.Now()
	got, err := nodes[6].Get(ctx, it.Key, it.Salt)
	if err != nil || !bytes.Equal(got.Value, it.Value) || got.Seq != 1 {
		t.Fatalf("get: %v %+v", err, got)
	}
	t.Logf("put %v (stored on %d nodes), get %v; node 0 knows %d nodes", putTook, nodes[3].Stats().PutReplies, time.Since(start), nodes[0].Stats().Nodes)
	if r := nodes[3].Stats().PutReplies; r < 4 {
		t.Errorf("put reached only %d nodes of 8", r)
	}
	// A newer seq replaces, an older one is refused everywhere.
	it2, _ := signaling.NewItem(priv, []byte("q0"), 2, []byte("newer"))
	if err := nodes[1].Put(ctx, it2); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Put(ctx, it); err == nil {
		t.Error("an older seq was stored")
	}
	if got, _ := nodes[5].Get(ctx, it.Key, it.Salt); string(got.Value) != "newer" {
		t.Errorf("got %q", got.Value)
	}
	if _, err := nodes[4].Get(ctx, it.Key, []byte("nothing here")); err != signaling.ErrNotFound {
		t.Errorf("missing item: %v", err)
	}
}

func TestSignalingOverDHT(t *testing.T) {
	nodes := testDHT(t, 8, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newWho(t), newWho(t)
	// Device lists: each account publishes, the other finds it.
	if err := signaling.PublishDeviceList(ctx, nodes[1], b.acct, &signaling.DeviceList{Devices: []signaling.DeviceEntry{signaling.EntryFor(b.dev, "phone")}}); err != nil {
		t.Fatal(err)
	}
	dir := &signaling.Directory{Transport: nodes[2]}
	list, err := dir.Lookup(ctx, b.acct.ID())
	if err != nil || len(list.Devices) != 1 {
		t.Fatalf("lookup: %v %+v", err, list)
	}
	sa, err := signaling.New(&signaling.Config{Device: a.dev, Transport: nodes[2]})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := signaling.New(&signaling.Config{Device: b.dev, Transport: nodes[5]})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_ = sb.Watch(a.peer())
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go answerAll(actx, sb, &wg)
	defer func() { stop(); wg.Wait() }()
	for i := 0; i < 3; i++ {
		start := time.Now()
		ans, err := sa.Request(ctx, list.Devices[0].Peer(b.acct.ID()), iceText(t))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(ans.Payload, []byte("re:a=ice-ufrag")) {
			t.Fatalf("answer %q", ans.Payload)
		}
		t.Logf("request/answer round trip %v", time.Since(start))
	}
}

func TestDHTExpiryAndRepublish(t *testing.T) {
	nodes := testDHT(t, 8, func(_ int, c *Config) { c.Exp = 300 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := newWho(t), newWho(t)
	if err := signaling.PublishDeviceList(ctx, nodes[1], a.acct, &signaling.DeviceList{Devices: []signaling.DeviceEntry{signaling.EntryFor(a.dev, "x")}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := signaling.LookupDeviceList(ctx, nodes[4], a.acct.ID(), time.Now()); err == nil {
		t.Fatal("the list outlived Exp")
	}
	// A request survives expiry because the writer republishes it.
	sa, _ := signaling.New(&signaling.Config{Device: a.dev, Transport: nodes[2], Republish: 100 * time.Millisecond})
	defer sa.Close()
	sb, _ := signaling.New(&signaling.Config{Device: b.dev, Transport: nodes[6], MinPoll: 400 * time.Millisecond})
	defer sb.Close()
	_ = sb.Watch(a.peer())
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go func() {
		defer wg.Done()
		time.Sleep(time.Second) // the first put has long expired by now
		var inner sync.WaitGroup
		inner.Add(1)
		answerAll(actx, sb, &inner)
	}()
	defer func() { stop(); wg.Wait() }()
	if _, err := sa.Request(ctx, b.peer(), []byte("still there?")); err != nil {
		t.Fatal(err)
	}
}

func TestDHTRestartFromState(t *testing.T) {
	dir := t.TempDir()
	nodes := testDHT(t, 8, func(i int, c *Config) {
		if i == 7 {
			c.StateFile = filepath.Join(dir, "dht-nodes")
		}
	})
	last := nodes[7]
	port := last.Addr()
	known := last.Stats().Nodes
	last.Close()
	// Restart with no bootstrap address: only the saved table.
	d, err := New(&Config{Listen: port, StateFile: filepath.Join(dir, "dht-nodes")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.Stats().Nodes; got < known/2 || got == 0 {
		t.Fatalf("restarted with %d nodes, had %d", got, known)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, nil, 1, []byte("after restart"))
	if err := d.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Get(ctx, it.Key, nil); err != nil {
		t.Fatal(err)
	}
}

// hostilePackets are KRPC messages that crash or mislead an unprotected
// anacrolix/dht node.
func hostilePackets() [][]byte {
	var out [][]byte
	for _, q := range []string{"ping", "find_node", "get_peers", "announce_peer", "get", "put", "sample_infohashes", "pd_listen", "pd_notify", "x"} {
		out = append(out, []byte("d1:q"+itoa(len(q))+":"+q+"1:t2:aa1:y1:qe"))      // no "a"
		out = append(out, []byte("d1:ade1:q"+itoa(len(q))+":"+q+"1:t2:aa1:y1:qe")) // empty "a"
		out = append(out, []byte("d1:ad2:id20:abcdefghij0123456789e1:q"+itoa(len(q))+":"+q+"1:t2:aa1:y1:qe"))
	}
	// The listen extension (listen.go): targets of every length, a notice
	// of a target nobody listens to.
	out = append(out, []byte("d1:ad2:id20:abcdefghij01234567891:v20:abcdefghij0123456789e1:q9:pd_listen1:t2:aa1:y1:qe"),
		[]byte("d1:ad2:id20:abcdefghij01234567891:v7:partiale1:q9:pd_listen1:t2:aa1:y1:qe"),
		[]byte("d1:ad2:id20:abcdefghij01234567891:vli1eee1:q9:pd_listen1:t2:aa1:y1:qe"),
		[]byte("d1:ad2:id20:abcdefghij01234567896:target20:abcdefghij01234567891:k32:abcdefghij0123456789abcdefghij014:salt2:q03:seqi1e3:sig64:abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789abcd1:v2:hie1:q9:pd_notify1:t2:aa1:y1:qe"))
	out = append(out, []byte("d1:y1:re"), []byte("d1:rde1:t2:zz1:y1:re"), []byte("de"), []byte("d"), []byte("li1ee"), []byte("d1:ad2:id20:abcdefghij01234567896:target20:abcdefghij0123456789e1:q3:get1:t2:aa1:y1:qe"))
	return out
}

func itoa(n int) string {
	return string(bencode.MustMarshal(n))[1 : len(bencode.MustMarshal(n))-1]
}

func TestHostileKRPC(t *testing.T) {
	nodes := testDHT(t, 3, nil)
	target := net.UDPAddrFromAddrPort(nodes[1].Addr())
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	pkts := hostilePackets()
	for i := 0; i < 3000; i++ {
		var p []byte
		if i < len(pkts) {
			p = pkts[i]
		} else {
			p = mutate(rng, pkts[rng.IntN(len(pkts))])
		}
		if _, err := c.WriteTo(p, target); err != nil {
			t.Fatal(err)
		}
	}
	// Still alive and answering.
	for try := 0; try < 10; try++ { // replies are rate-limited: wait for the limiter
		time.Sleep(200 * time.Millisecond)
		if err = nodes[0].srv.Ping(target).Err; err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("node stopped answering: %v", err)
	}
	if nodes[1].Stats().QueriesDropped == 0 {
		t.Error("no query was dropped")
	}
	t.Logf("dropped %d hostile queries", nodes[1].Stats().QueriesDropped)
}

func mutate(rng *rand.Rand, p []byte) []byte {
	q := append([]byte(nil), p...)
	for n := rng.IntN(4) + 1; n > 0 && len(q) > 0; n-- {
		switch rng.IntN(3) {
		case 0:
			q[rng.IntN(len(q))] = byte(rng.IntN(256))
		case 1:
			i := rng.IntN(len(q))
			q = append(q[:i], q[i+1:]...)
		case 2:
			i := rng.IntN(len(q) + 1)
			q = append(q[:i], append([]byte{"de:0123456789il"[rng.IntN(15)]}, q[i:]...)...)
		}
	}
	return q
}

// FuzzKRPC sends each input as a UDP packet to a running node, and checks
// every so often that it still answers.
func FuzzKRPC(f *testing.F) {
	for _, p := range hostilePackets() {
		f.Add(p)
	}
	var once sync.Once
	var node *Node
	var peer *Node
	var c *net.UDPConn
	n := 0
	f.Cleanup(func() {
		if node != nil {
			node.Close()
			peer.Close()
			c.Close()
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		once.Do(func() {
			node, _ = New(&Config{Listen: loopback})
			peer, _ = New(&Config{Listen: loopback})
			c, _ = net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback))
		})
		_, _ = c.WriteTo(data, net.UDPAddrFromAddrPort(node.Addr()))
		if n++; n%200 == 0 {
			// Replies are rate-limited (SendRate), so under this flood a
			// ping may go unanswered: a live node answers once the limiter
			// has refilled; a crashed or wedged one never does.
			var err error
			for try := 0; try < 5; try++ {
				if err = peer.srv.Ping(net.UDPAddrFromAddrPort(node.Addr())).Err; err == nil {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
			t.Fatalf("node stopped answering: %v", err)
		}
	})
}

// TestDHTStaleStateFile: a node restarts with a state file that lists only
// nodes that are gone, and with a bootstrap address of a live DHT: it must
// use the live one (anacrolix/dht alone would start from the dead table and
// never try the bootstrap address).
func TestDHTStaleStateFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "dht-nodes")
	old := testDHT(t, 3, func(i int, c *Config) {
		if i == 2 {
			c.StateFile = state
		}
	})
	for _, d := range old {
		d.Close() // the old network is gone; the state file remembers it
	}
	live := testDHT(t, 3, nil)
	d, err := New(&Config{Listen: loopback, StateFile: state, Bootstrap: []netip.AddrPort{live[0].Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Stats().Nodes == 0 {
		t.Fatal("the state file restored no node: the test proves nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, nil, 1, []byte("through the live DHT"))
	if err := d.Put(ctx, it); err != nil {
		t.Fatalf("put with a stale table: %v", err)
	}
	if _, err := live[2].Get(ctx, it.Key, nil); err != nil {
		t.Fatal(err)
	}
}

func TestKeeperRepublishesBeforeExpiry(t *testing.T) {
	// Real DHT nodes forget items after 300 ms; the keeper republishes
	// every 100 ms, so the list stays findable for many lifetimes.
	nodes := testDHT(t, 8, func(_ int, c *Config) { c.Exp = 300 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newWho(t)
	k, err := signaling.StartKeeper(&signaling.KeeperConfig{Transport: nodes[1], Account: a.acct, Device: a.dev, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	waitFor(t, 5*time.Second, "the list published", func() bool {
		_, err := signaling.LookupDeviceList(ctx, nodes[5], a.acct.ID(), time.Now())
		return err == nil
	})
	for i := 0; i < 10; i++ {
		time.Sleep(150 * time.Millisecond)
		if _, err := signaling.LookupDeviceList(ctx, nodes[(i%7)+1], a.acct.ID(), time.Now()); err != nil {
			t.Fatalf("after %d ms: %v", (i+1)*150, err)
		}
	}
}
