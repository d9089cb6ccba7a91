package dht

// The put quota and sustained use: a source's updates are never refused,
// its floods of new items are, and many exchanges through one node keep
// its store constant.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

func TestDHTPerSourceQuota(t *testing.T) {
	nodes := testDHT(t, 2, func(i int, c *Config) {
		if i == 0 {
			c.PerSource = 3
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, priv, _ := ed25519.GenerateKey(nil)
	for i := 0; i < 4; i++ {
		it, _ := signaling.NewItem(priv, []byte{byte('a' + i)}, 1, []byte("x"))
		_ = nodes[1].Put(ctx, it) // may also land on other nodes; node 0 is the one with the quota
		_, err := nodes[0].store.Get(it.Target())
		if i < 3 && err != nil {
			t.Fatalf("item %d not stored on node 0: %v", i, err)
		}
		if i == 3 && err == nil {
			t.Fatal("node 0 stored a fourth distinct item from one source")
		}
	}
	if nodes[0].Stats().QueriesDropped == 0 {
		t.Error("the refused put was not counted")
	}
	// Updating an item it already stored is still allowed.
	it, _ := signaling.NewItem(priv, []byte{'a'}, 2, []byte("y"))
	_ = nodes[1].Put(ctx, it)
	if got, err := nodes[0].store.Get(it.Target()); err != nil || got.Seq != 2 {
		t.Fatalf("update refused: %v", err)
	}
}

// exchange runs n request/answer exchanges from a to b, parallel at a
// time, and fails the test on any loss.
func exchange(t testing.TB, ctx context.Context, sa *signaling.Signaler, to signaling.Peer, n, parallel int) {
	t.Helper()
	if lost, first := exchanges(ctx, sa, to, n, parallel); lost > 0 {
		t.Fatalf("%d of %d exchanges lost, first: %v", lost, n, first)
	}
}

// exchanges makes n requests to "to", parallel at a time, and returns how
// many got no answer or a wrong one, and the first such error.
func exchanges(ctx context.Context, sa *signaling.Signaler, to signaling.Peer, n, parallel int) (int, error) {
	sem := make(chan struct{}, parallel)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p := []byte("request " + itoa(i))
			ans, err := sa.Request(ctx, to, p)
			if err == nil && !bytes.Equal(ans.Payload, append([]byte("re:"), p...)) {
				err = errors.New("wrong answer " + string(ans.Payload))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	lost := 0
	var first error
	for err := range errs {
		if err != nil {
			lost++
			first = cmp.Or(first, err)
		}
	}
	return lost, first
}

// TestSustainedThroughOneNode: many more exchanges than a source may
// store distinct items pass through one DHT node, and the node's store
// does not grow: the stall after ~500 sends is gone.
func TestSustainedThroughOneNode(t *testing.T) {
	nodes := testDHT(t, 1, func(_ int, c *Config) { c.PerSource = 16 })
	boot := []netip.AddrPort{nodes[0].Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dev := func() *Node {
		d, err := New(&Config{Listen: loopback, Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	da, db := dev(), dev()
	a, b := newWho(t), newWho(t)
	fast := func(w who, tr signaling.Transport) *signaling.Signaler {
		s, err := signaling.New(&signaling.Config{Device: w.dev, Transport: tr, MinPoll: 20 * time.Millisecond, AnswerPoll: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb := fast(a, da), fast(b, db)
	_ = sb.Watch(a.peer())
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go answerAll(actx, sb, &wg)
	defer func() { stop(); wg.Wait() }()

	n := 300
	if testing.Short() {
		n = 60
	}
	exchange(t, ctx, sa, b.peer(), n, 4)
	// Every item lands on the one node (and on the other device's node).
	st := nodes[0].Stats()
	t.Logf("%d exchanges: %d items stored, %d queries dropped", n, st.StoredItems, st.QueriesDropped)
	if st.StoredItems > 8 {
		t.Errorf("%d items stored for one device pair, want at most %d", st.StoredItems, 8)
	}
	if st.QueriesDropped != 0 {
		t.Errorf("%d queries dropped", st.QueriesDropped)
	}
}

// TestDHTQuotaFlood: a source that floods new items is refused beyond its
// quota and counted, while legitimate devices keep exchanging (their
// updates are never refused) and a device whose port changed (NAT
// rebinding) still updates its items.
func TestDHTQuotaFlood(t *testing.T) {
	nodes := testDHT(t, 1, func(_ int, c *Config) { c.PerSource = 16 })
	boot := []netip.AddrPort{nodes[0].Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newNode := func() *Node {
		d, err := New(&Config{Listen: loopback, Bootstrap: boot})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	flooder, da, db := newNode(), newNode(), newNode()
	a, b := newWho(t), newWho(t)
	sa, err := signaling.New(&signaling.Config{Device: a.dev, Transport: da, MinPoll: 20 * time.Millisecond, AnswerPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := signaling.New(&signaling.Config{Device: b.dev, Transport: db, MinPoll: 20 * time.Millisecond, AnswerPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_ = sb.Watch(a.peer())
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go answerAll(actx, sb, &wg)
	const flood = 200
	var refused atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		_, priv, _ := ed25519.GenerateKey(nil)
		var fwg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := 0; i < flood; i++ {
			sem <- struct{}{}
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				defer func() { <-sem }()
				it, _ := signaling.NewItem(priv, []byte("flood"+itoa(i)), 1, []byte("x"))
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if _, err := nodes[0].store.Get(it.Target()); err == nil {
					return
				}
				_ = flooder.Put(pctx, it)
				if _, err := nodes[0].store.Get(it.Target()); err != nil {
					refused.Add(1)
				}
			}()
		}
		fwg.Wait()
	}()
	exchange(t, ctx, sa, b.peer(), 40, 4)
	<-floodDone
	stop()
	wg.Wait()
	st := nodes[0].Stats()
	t.Logf("flood of %d new items: node 0 refused %d, dropped %d queries, stores %d items", flood, refused.Load(), st.QueriesDropped, st.StoredItems)
	if st.StoredItems > 16+8 {
		t.Errorf("node stores %d items: the flood was not bounded", st.StoredItems)
	}
	if refused.Load() < flood-16 || st.QueriesDropped < flood/2 {
		t.Errorf("only %d refused, %d queries dropped", refused.Load(), st.QueriesDropped)
	}

	// A's port changes: its existing items are updated from the new port.
	_, priv, _ := ed25519.GenerateKey(nil)
	first := newNode()
	var its []signaling.Item
	for i := 0; i < 16; i++ {
		it, _ := signaling.NewItem(priv, []byte("mine"+itoa(i)), 1, []byte("v1"))
		if err := first.Put(ctx, it); err != nil {
			t.Fatal(err)
		}
		its = append(its, it)
	}
	rebound := newNode()
	for _, old := range its {
		it, _ := signaling.NewItem(priv, old.Salt, 2, []byte("v2"))
		if err := rebound.Put(ctx, it); err != nil {
			t.Fatalf("update from a new port refused: %v", err)
		}
	}
}
