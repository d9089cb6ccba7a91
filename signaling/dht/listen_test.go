package dht

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/netip"
	"testing"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestListen: a node that subscribes a target at its storers is told of
// every put there at once, with the item; a node with NoListen never
// listens; bad pd_listen and forged pd_notify queries are refused.
func TestListen(t *testing.T) {
	nodes := testDHT(t, 16, func(i int, c *Config) { c.NoListen = i == 5 })
	x, w, off := nodes[3], nodes[9], nodes[5]
	_, priv, _ := ed25519.GenerateKey(nil)
	key := [32]byte(priv.Public().(ed25519.PublicKey))
	salt := []byte("q0")
	target := signaling.Target(key, salt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(seq int64, v string) {
		t.Helper()
		it, _ := signaling.NewItem(priv, salt, seq, []byte(v))
		if err := w.Put(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "one")
	sub := x.Subscribe()
	defer sub.Close()
	subOff := off.Subscribe()
	defer subOff.Close()
	for _, d := range []*Node{x, off} {
		if _, err := d.Get(ctx, key, salt); err != nil { // the storers are known
			t.Fatal(err)
		}
	}
	sub.Set([][20]byte{target})
	subOff.Set([][20]byte{target})
	waitFor(t, 5*time.Second, "a live subscription", func() bool { return sub.Listening(target) })
	// A new subscription is told of the item stored before it.
	select {
	case it := <-sub.Updates():
		if string(it.Value) != "one" {
			t.Fatalf("first notice %q, want the stored item", it.Value)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no notice of the item stored before the subscription")
	}
	for seq := int64(2); seq < 5; seq++ {
		v := string(rune('a' + seq))
		start := time.Now()
		put(seq, v)
		for got := false; !got; {
			select {
			case it := <-sub.Updates():
				got = it.Seq == seq && string(it.Value) == v
			case <-time.After(3 * time.Second):
				t.Fatalf("no notice of put %d", seq)
			}
		}
		t.Logf("put %d notified %v after the put began", seq, time.Since(start))
	}
	if subOff.Listening(target) || off.Stats().Listens != 0 {
		t.Fatalf("a NoListen node listens (%d pd_listen sent)", off.Stats().Listens)
	}
	held := 0
	for _, d := range nodes {
		held += d.Stats().Subscriptions
	}
	if held == 0 || held > cacheAsk {
		t.Fatalf("%d subscriptions held, want 1..%d", held, cacheAsk)
	}

	// Hostile queries, from a node that is not listening.
	q := func(to *Node, method string, a krpc.MsgArgs) error {
		return w.srv.Query(ctx, anadht.NewAddr(net.UDPAddrFromAddrPort(to.Addr())), method, anadht.QueryInput{MsgArgs: a}).ToError()
	}
	if err := q(nodes[1], "pd_listen", krpc.MsgArgs{V: string(make([]byte, 20*(maxPerQuery+1)))}); err == nil {
		t.Fatal("pd_listen of too many targets accepted")
	}
	if err := q(nodes[1], "pd_listen", krpc.MsgArgs{V: "short"}); err == nil {
		t.Fatal("pd_listen of a partial target accepted")
	}
	seq := int64(9)
	forged := krpc.MsgArgs{Target: target, K: key, Salt: salt, Seq: &seq, V: "forged"}
	if err := q(x, "pd_notify", forged); err == nil {
		t.Fatal("a pd_notify with a bad signature accepted")
	}
	it, _ := signaling.NewItem(priv, []byte("q1"), 1, []byte("not listened"))
	other := krpc.MsgArgs{Target: it.Target(), K: key, Salt: it.Salt, Seq: &it.Seq, Sig: it.Sig, V: "not listened"}
	if err := q(x, "pd_notify", other); err == nil {
		t.Fatal("a pd_notify for a target nobody listens to accepted")
	}
	select {
	case it := <-sub.Updates():
		t.Fatalf("a refused notice was delivered: %q", it.Value)
	default:
	}
}

// TestListenAfterLostPingBack: a storer whose ping-back to a subscriber
// was lost (it asked a minute ago and heard nothing) would hold the
// subscription but never notify it; it tells the subscriber it holds
// nothing, so that it keeps polling, pings it again, and holds it at the
// next pd_listen. Whenever the subscriber is Listening, puts reach it.
func TestListenAfterLostPingBack(t *testing.T) {
	nodes := testDHT(t, 8, nil)
	x, w := nodes[3], nodes[6]
	_, priv, _ := ed25519.GenerateKey(nil)
	key := [32]byte(priv.Public().(ed25519.PublicKey))
	salt := []byte("q0")
	target := signaling.Target(key, salt)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(seq int64) {
		t.Helper()
		it, _ := signaling.NewItem(priv, salt, seq, []byte("v"))
		if err := w.Put(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	put(1)
	if _, err := x.Get(ctx, key, salt); err != nil { // the storers are known
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the ping-backs x's get caused are done
	for _, d := range nodes {
		d.citizen.mu.Lock()
		delete(d.citizen.heard, x.Addr())
		if _, ok := d.citizen.asked[x.Addr()]; ok {
			d.citizen.asked[x.Addr()] = time.Now().Add(-time.Minute)
		}
		d.citizen.mu.Unlock()
	}
	sub := x.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{target})
	start := time.Now()
	for seq := int64(2); !sub.Listening(target); seq++ {
		if time.Since(start) > 20*time.Second {
			t.Fatal("never Listening")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Listening after %v", time.Since(start))
	for len(sub.Updates()) > 0 {
		<-sub.Updates()
	}
	put(2)
	for {
		select {
		case it := <-sub.Updates():
			if it.Seq == 2 {
				return
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Listening, yet a put was not notified")
		}
	}
}

// FuzzExtension runs the listen extension's handlers on any query
// arguments: no panic, and no notice for a target nobody listens to.
func FuzzExtension(f *testing.F) {
	for _, p := range hostilePackets() {
		f.Add(p)
	}
	d, err := New(&Config{Listen: loopback, NoListen: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m krpc.Msg
		if bencode.Unmarshal(data, &m) != nil || m.A == nil {
			return
		}
		for _, q := range []string{"pd_listen", "pd_notify"} {
			m.Q = q
			d.onQuery(&m, src)
		}
		if n := d.Stats().Notified; n != 0 {
			t.Fatalf("%d notices taken with no subscription", n)
		}
	})
}

// TestListenWithoutExtension: a storer that answers pd_listen like a
// mainline node without the extension (libtorrent replies to unknown
// queries as to find_node: no "seq") is remembered as such, and the
// target is not Listening, so the Signaler keeps polling it.
func TestListenWithoutExtension(t *testing.T) {
	x := testDHT(t, 1, nil)[0]
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var m krpc.Msg
			if bencode.Unmarshal(buf[:n], &m) != nil || m.Y != "q" {
				continue
			}
			r := bencode.MustMarshal(krpc.Msg{T: m.T, Y: "r", R: &krpc.Return{ID: krpc.ID{7}}})
			_, _ = c.WriteTo(r, from)
		}
	}()
	mainline := c.LocalAddr().(*net.UDPAddr).AddrPort()
	var target [20]byte
	target[0] = 1
	x.storers.keep(target, []krpc.NodeInfo{{ID: krpc.ID{7}, Addr: nodeAddr(mainline)}})
	sub := x.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{target})
	waitFor(t, 5*time.Second, "the pd_listen to the mainline node", func() bool { return x.Stats().Listens > 0 })
	waitFor(t, 5*time.Second, "the mainline node to be known as without the extension", func() bool {
		x.listener.mu.Lock()
		defer x.listener.mu.Unlock()
		_, no := x.listener.noListen[mainline]
		return no
	})
	if sub.Listening(target) {
		t.Fatal("a target stored only at a node without the extension is Listening")
	}
}

// TestCover: targets are subscribed at the storers that hold the most of
// them, listenStorers each (fewer when a target has fewer candidates), so many
// targets spread over a few shared storers cost a few nodes' keep-alives.
func TestCover(t *testing.T) {
	node := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1000+i))
	}
	var targets []bep44.Target
	var cands [][]netip.AddrPort
	// 100 targets: each stored at the shared nodes 0 and 1 and at six
	// nodes of its own.
	for i := 0; i < 100; i++ {
		var tg bep44.Target
		tg[0], tg[1] = byte(i), 1
		targets = append(targets, tg)
		c := []netip.AddrPort{}
		for j := 0; j < 6; j++ {
			c = append(c, node(10+i*6+j))
		}
		c = append(c, node(0), node(1))
		cands = append(cands, c)
	}
	// and one with a single candidate, and one with none.
	targets = append(targets, bep44.Target{1}, bep44.Target{2})
	cands = append(cands, []netip.AddrPort{node(5)}, nil)
	per := cover(targets, cands, listenStorers)
	if len(per) != 3 || len(per[node(0)]) != 100 || len(per[node(1)]) != 100 || len(per[node(5)]) != 1 {
		got := map[netip.AddrPort]int{}
		for ap, ts := range per {
			got[ap] = len(ts)
		}
		t.Fatalf("subscriptions per node %v, want 100 at each shared node and 1 at the single one", got)
	}
}

// TestOwnStore: a put that reached only this node (on a small DHT a device
// is among the closest nodes, and a lossy link may lose the put to the
// others) is read by this node's gets and notified to its subscriptions.
// Before, a device polled the node it reads from and never saw it.
func TestOwnStore(t *testing.T) {
	nodes := testDHT(t, 3, nil)
	a := nodes[1]
	_, priv, _ := ed25519.GenerateKey(nil)
	key := [32]byte(priv.Public().(ed25519.PublicKey))
	salt := []byte("q0")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Get(ctx, key, salt); err == nil { // the storers are cached, without a
		t.Fatal("an item before any put")
	}
	sub := a.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{signaling.Target(key, salt)})
	it, _ := signaling.NewItem(priv, salt, 1, []byte("only here"))
	// As a put from another node that reached a alone.
	if err := a.local.Put(&bep44.Item{V: it.Value, K: it.Key, Salt: it.Salt, Sig: it.Sig, Seq: it.Seq}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-sub.Updates():
		if string(got.Value) != "only here" {
			t.Fatalf("notified %q", got.Value)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a put stored here was not notified to this node's subscription")
	}
	got, err := a.Get(ctx, key, salt)
	if err != nil || string(got.Value) != "only here" {
		t.Fatalf("get: %q, %v", got.Value, err)
	}
}
