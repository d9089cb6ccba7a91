package dht

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestStorerCache: after the first get of a target, a get asks the cached
// storers directly (a few packets instead of a traversal), still sees every
// update another node puts, and when the cached storers are gone it
// traverses again and finds the item on the others.
func TestStorerCache(t *testing.T) {
	nodes := testDHT(t, 16, nil)
	x, w := nodes[3], nodes[9]
	_, priv, _ := ed25519.GenerateKey(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(seq int64, v string) {
		t.Helper()
		it, _ := signaling.NewItem(priv, []byte("q0"), seq, []byte(v))
		if err := w.Put(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	get := func(want string) int64 {
		t.Helper()
		before := x.Stats().PacketsSent
		it, err := x.Get(ctx, [32]byte(priv.Public().(ed25519.PublicKey)), []byte("q0"))
		if err != nil || string(it.Value) != want {
			t.Fatalf("get: %v %q, want %q", err, it.Value, want)
		}
		return x.Stats().PacketsSent - before
	}
	put(1, "one")
	first := get("one")
	target := signaling.Target([32]byte(priv.Public().(ed25519.PublicKey)), []byte("q0"))
	x.storers.mu.Lock() // as if found the same a few times: no re-traversal during the test
	s := x.storers.m[target]
	s.ttl = time.Minute
	x.storers.m[target] = s
	x.storers.mu.Unlock()
	for i := int64(2); i < 6; i++ {
		v := string(rune('a' + i))
		put(i, v)
		if n := get(v); n > cacheAsk {
			t.Fatalf("cached get %d sent %d packets, want ≤ %d (the first, a traversal, sent %d)", i, n, cacheAsk, first)
		}
	}
	t.Logf("first get (traversal): %d packets; cached gets: ≤ %d", first, cacheAsk)

	// The storers x asks go away; the item is on the other closest nodes.
	cached := x.storers.nodes(target)
	if len(cached) < cacheAsk+1 {
		t.Fatalf("%d storers cached, want more than %d", len(cached), cacheAsk)
	}
	gone := map[string]bool{}
	for _, n := range cached[:cacheAsk] {
		gone[n.Addr.String()] = true
	}
	for _, d := range nodes {
		if gone[nodeAddr(d.Addr()).String()] && d != x && d != w {
			d.Close()
		}
	}
	for i := 0; i < 3; i++ { // the first gets meet the dead storers
		get("f")
	}
}

// TestStorerTTL: a target's storers are trusted for minStorerTTL at first
// (fewer than K of them; fullStorerTTL for K), twice as long each time a
// traversal finds the same nodes, up to the configured refresh, and for
// the first time again when they change.
func TestStorerTTL(t *testing.T) {
	table := 3
	c := newStorerCache(30*time.Second, func() int { return table })
	var target [20]byte
	a := []krpc.NodeInfo{{ID: krpc.ID{1}}, {ID: krpc.ID{2}}}
	b := []krpc.NodeInfo{{ID: krpc.ID{1}}, {ID: krpc.ID{3}}}
	ttl := func() time.Duration { return c.m[target].ttl }
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		c.keep(target, a)
		if ttl() != w {
			t.Fatalf("after %d same traversals: ttl %v, want %v", i+1, ttl(), w)
		}
	}
	c.keep(target, b)
	if ttl() != minStorerTTL {
		t.Fatalf("after a change: ttl %v, want %v", ttl(), minStorerTTL)
	}
	full := make([]krpc.NodeInfo, storersPerKey)
	for i := range full {
		full[i].ID[0] = byte(i)
	}
	long := newStorerCache(time.Hour, func() int { return table })
	long.keep(target, full)
	long.keep(target, full)
	if got := long.m[target].ttl; got != 2*fullStorerTTL {
		t.Fatalf("K storers found twice: ttl %v, want %v", got, 2*fullStorerTTL)
	}
	if c.nodes(target) == nil {
		t.Fatal("fresh storers not returned")
	}
	c.m[target] = storerSet{nodes: full, found: time.Now().Add(-6 * time.Second), ttl: minStorerTTL, table: table}
	if c.nodes(target) != nil {
		t.Fatal("K storers returned after their ttl")
	}
	// Fewer than K: trusted past their ttl while the table is unchanged,
	// looked up again once it changed or past the configured refresh.
	c.m[target] = storerSet{nodes: b, found: time.Now().Add(-6 * time.Second), ttl: minStorerTTL, table: table}
	if c.nodes(target) == nil {
		t.Fatal("a small network's storers dropped while the routing table is unchanged")
	}
	table++
	if c.nodes(target) != nil {
		t.Fatal("a small network's storers returned after the routing table changed")
	}
	c.m[target] = storerSet{nodes: b, found: time.Now().Add(-31 * time.Second), ttl: minStorerTTL, table: table}
	if c.nodes(target) != nil {
		t.Fatal("a small network's storers returned past the refresh")
	}
	off := newStorerCache(-1, func() int { return table })
	off.keep(target, a)
	if off.nodes(target) != nil {
		t.Fatal("a disabled cache returned storers")
	}
}
