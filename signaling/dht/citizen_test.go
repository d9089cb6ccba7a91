package dht

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestGoodCitizen: nodes that only ever talked to one bootstrap node learn
// about each other through it, and an item is stored on the nodes closest
// to its target, not on the bootstrap node alone; get_peers replies carry
// a write token.
func TestGoodCitizen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := New(&Config{Listen: loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	join := func() *Node {
		d, err := New(&Config{Listen: loopback, Bootstrap: []netip.AddrPort{boot.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	nodes := []*Node{boot}
	for i := 0; i < 15; i++ {
		nodes = append(nodes, join())
	}
	// Its table holds most of them (a Kademlia bucket takes 8), and every
	// one it holds is good: it pinged them back.
	waitFor(t, 10*time.Second, "the bootstrap node to find its clients good", func() bool {
		st := boot.Stats()
		return st.Nodes >= 10 && st.GoodNodes == st.Nodes
	})
	st := boot.Stats()
	t.Logf("bootstrap node: %d nodes, %d good, %d pinged back", st.Nodes, st.GoodNodes, st.PingedBack)

	// The network settles: each node refreshes its table once, as its
	// maintenance does every Maintain. Before that, a node that joined
	// late is known only to the nodes its own bootstrap queried, and a
	// traversal towards a target near it can miss it (it did in CI: an
	// item stored on 5 of the 8 closest; a newcomer that learned fewer
	// than 8 nodes).
	for _, d := range nodes {
		d.maintain(ctx)
	}

	// A newcomer that knows only the bootstrap node learns the others
	// through referrals: at least the K (8) closest to it that its
	// bootstrap traversal queried, usually 10 or 11 of 16 (a bootstrap
	// node that refers nobody leaves it at 1).
	x := join()
	waitFor(t, 10*time.Second, "the newcomer to learn 8 nodes", func() bool { return x.Stats().Nodes >= 8 })
	t.Logf("newcomer: %d nodes", x.Stats().Nodes)

	// Its item lands on the 8 nodes closest to the target.
	x.maintain(ctx)
	all := append(slices.Clone(nodes), x)
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, []byte("q0"), 1, []byte("closest"))
	if err := x.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	target := it.Target()
	slices.SortFunc(all, func(a, b *Node) int {
		ia, ib := a.ID(), b.ID()
		return bytes.Compare(xor(ia, target), xor(ib, target))
	})
	holders := 0
	var missing []string
	for i, d := range all[:8] {
		if _, err := d.store.Get(target); err == nil {
			holders++
		} else {
			missing = append(missing, fmt.Sprintf("#%d %v (known to the newcomer: %v)", i, d.Addr(), x.knows(d.Addr())))
		}
	}
	if holders < 6 {
		t.Fatalf("only %d of the 8 closest nodes store the item; missing: %v", holders, missing)
	}
	if boot := nodes[0]; slices.Index(all, boot) >= 8 {
		if _, err := boot.store.Get(target); err == nil {
			t.Log("the bootstrap node (not among the closest) also holds it") // allowed, not required
		}
	}

	// get_peers replies carry a token.
	res := x.srv.GetPeers(ctx, anadht.NewAddr(net.UDPAddrFromAddrPort(boot.Addr())), int160.FromByteArray(target), false, anadht.QueryRateLimiting{})
	if res.Err != nil || res.Reply.R == nil || res.Reply.R.Token == nil || len(res.Reply.R.Nodes) == 0 {
		t.Fatalf("get_peers reply without token or nodes: %v %+v", res.Err, res.Reply.R)
	}
}

func xor(a, b [20]byte) []byte {
	out := make([]byte, 20)
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// TestMaintenance: with a short Maintain, a node re-pings the nodes it has
// not heard from and refreshes its table, and stops cleanly on Close.
func TestMaintenance(t *testing.T) {
	nodes := testDHT(t, 4, func(i int, c *Config) { c.Maintain = 100 * time.Millisecond })
	waitFor(t, 5*time.Second, "maintenance rounds", func() bool { return nodes[1].Stats().Maintenance >= 3 })
	if g := nodes[1].Stats().GoodNodes; g < 3 {
		t.Fatalf("%d good nodes after maintenance, want 3", g)
	}
}

// TestDeadNodes: nodes that went away stay in every table for 15 minutes,
// yet gets and puts do not wait out their 2 s query timeout, and after two
// time outs they are no longer queried.
func TestDeadNodes(t *testing.T) {
	nodes := testDHT(t, 8, nil)
	x := nodes[1]
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, []byte("q0"), 1, []byte("still here"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := x.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	var gone []netip.AddrPort
	for _, d := range nodes[5:] {
		gone = append(gone, d.Addr())
		d.Close()
	}
	if n := x.Stats().Nodes; n < 7 {
		t.Fatalf("x knows %d nodes, want the dead ones still in its table", n)
	}
	// Under the query timeout (2 s), with room to spare for a slow machine:
	// the old traversals waited for every dead node and could not.
	for i := 0; i < 3; i++ {
		gctx, gcancel := context.WithTimeout(ctx, 1900*time.Millisecond)
		got, err := x.Get(gctx, it.Key, it.Salt)
		gcancel()
		if err != nil || string(got.Value) != "still here" {
			t.Fatalf("get %d with dead nodes: %v %q", i, err, got.Value)
		}
		pctx, pcancel := context.WithTimeout(ctx, 1900*time.Millisecond)
		it, _ = signaling.NewItem(priv, []byte("q0"), int64(i+2), []byte("still here"))
		err = x.Put(pctx, it)
		pcancel()
		if err != nil {
			t.Fatalf("put %d with dead nodes: %v", i, err)
		}
	}
	// Three gets and three puts each met the dead nodes closest to the
	// target: those are skipped now.
	dead := 0
	for _, a := range gone {
		if x.citizen.isDead(a) {
			dead++
		}
	}
	if dead == 0 {
		t.Fatalf("none of %d dead nodes is skipped", len(gone))
	}
}

// knows reports whether addr is in d's routing table.
func (d *Node) knows(addr netip.AddrPort) bool {
	for _, ni := range d.srv.Nodes() {
		if ni.Addr.ToNodeAddrPort().AddrPort == addr {
			return true
		}
	}
	return false
}
