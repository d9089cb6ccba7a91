package dht

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestServe: a Serve node that knows no other node stores its own puts
// and reads them back (a plain node fails with "no nodes known"); a
// device's put stored at it is delivered to its own subscriptions, and a
// target it stores is Listening.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, []byte("q0"), 1, []byte("alone"))

	plain, err := New(&Config{Listen: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Put(ctx, it); !errors.Is(err, signaling.ErrNotStored) {
		t.Fatalf("put on a lone plain node: %v, want ErrNotStored", err)
	}
	if plain.Reachable() {
		t.Fatal("a lone plain node says it is reachable")
	}

	srv, err := New(&Config{Listen: loopback, Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !srv.Reachable() {
		t.Fatal("a Serve node says it is not reachable")
	}
	if err := srv.Put(ctx, it); err != nil {
		t.Fatalf("put on a lone Serve node: %v", err)
	}
	got, err := srv.Get(ctx, it.Key, it.Salt)
	if err != nil || string(got.Value) != "alone" || got.Seq != 1 {
		t.Fatalf("get on a lone Serve node: %v %+v", err, got)
	}
	// An older seq does not replace it.
	old, _ := signaling.NewItem(priv, []byte("q0"), 0, []byte("older"))
	_ = srv.Put(ctx, old)
	if got, _ := srv.Get(ctx, it.Key, it.Salt); string(got.Value) != "alone" {
		t.Fatalf("an older seq replaced the item: %q", got.Value)
	}

	sub := srv.Subscribe()
	defer sub.Close()
	it2, _ := signaling.NewItem(priv, []byte("q1"), 7, []byte("from a device"))
	sub.Set([][20]byte{it2.Target()})
	if !sub.Listening(it2.Target()) {
		t.Fatal("a lone Serve node is not Listening to a target it stores")
	}
	dev, err := New(&Config{Listen: loopback, Bootstrap: []netip.AddrPort{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dev.Put(ctx, it2); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-sub.Updates():
		if string(n.Value) != "from a device" || n.Seq != 7 {
			t.Fatalf("notified %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("a device's put at the Serve node was not delivered to its subscription")
	}
}
