package signaling

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// failing is a Transport that reaches no one.
type failing struct {
	err   error
	delay time.Duration
}

func (f failing) Put(ctx context.Context, _ Item) error {
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
	}
	return f.err
}

func (f failing) Get(ctx context.Context, _ [32]byte, _ []byte) (Item, error) {
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
	}
	return Item{}, f.err
}

func (f failing) Reachable() bool { return false }

// slowRoute is a route that says it reaches someone but is slow to fail.
type slowRoute struct{ f failing }

func (s slowRoute) Put(ctx context.Context, it Item) error { return s.f.Put(ctx, it) }
func (s slowRoute) Get(ctx context.Context, k [32]byte, salt []byte) (Item, error) {
	return s.f.Get(ctx, k, salt)
}

// TestMulti: a put succeeds when one route stores it, without waiting for
// a slow route; a get returns the highest seq; when every route fails the
// error names each; a route that reaches no one is skipped.
func TestMulti(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, priv, _ := ed25519.GenerateKey(nil)
	it1, _ := NewItem(priv, []byte("q0"), 1, []byte("old"))
	it2, _ := NewItem(priv, []byte("q0"), 2, []byte("new"))

	a, b := &MemoryTransport{}, &MemoryTransport{}
	slow := failing{err: errors.New("udp blocked"), delay: 2 * time.Second}
	m := NewMulti(Route{"dht", slow}, Route{"slow", slowRoute{slow}}, Route{"a", a}, Route{"b", b})
	defer m.Close()
	start := time.Now()
	if err := m.Put(ctx, it1); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("put waited %v for slow routes", time.Since(start))
	}
	_ = b.Put(ctx, it2) // b alone has the newer one
	got, err := m.Get(ctx, it1.Key, it1.Salt)
	if err != nil || got.Seq != 2 {
		t.Fatalf("get: %v seq %d, want 2", err, got.Seq)
	}
	if _, err := m.Get(ctx, it1.Key, []byte("none")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of nothing: %v", err)
	}

	// A route that reaches no one is named too when the others fail.
	half := NewMulti(Route{"dht", failing{err: errors.New("unused")}}, Route{"proxy p:443", slowRoute{failing{err: errors.New("refused")}}})
	defer half.Close()
	if err := half.Put(ctx, it1); err == nil || !strings.Contains(err.Error(), "dht: reaches no node") || !strings.Contains(err.Error(), "proxy p:443: refused") {
		t.Fatalf("put: %v", err)
	}

	bad := NewMulti(Route{"dht", failing{err: errors.New("no nodes known")}}, Route{"proxy example.org:443", failing{err: errors.New("connection refused")}})
	defer bad.Close()
	err = bad.Put(ctx, it1)
	if !errors.Is(err, ErrNotStored) || !strings.Contains(err.Error(), "dht: no nodes known") || !strings.Contains(err.Error(), "proxy example.org:443: connection refused") {
		t.Fatalf("put on two failing routes: %v", err)
	}
	if _, err := bad.Get(ctx, it1.Key, it1.Salt); err == nil || !strings.Contains(err.Error(), "dht: ") || !strings.Contains(err.Error(), "proxy example.org:443: ") {
		t.Fatalf("get on two failing routes: %v", err)
	}
}

// TestMultiListen: a subscription over two listening routes delivers a
// put once.
func TestMultiListen(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := NewItem(priv, []byte("q0"), 1, []byte("x"))
	a, b := &MemoryTransport{Notify: true}, &MemoryTransport{Notify: true}
	m := NewMulti(Route{"a", a}, Route{"b", b})
	defer m.Close()
	sub := m.Subscribe()
	defer sub.Close()
	sub.Set([][20]byte{it.Target()})
	if !sub.Listening(it.Target()) {
		t.Fatal("not listening")
	}
	ctx := context.Background()
	_ = a.Put(ctx, it)
	_ = b.Put(ctx, it)
	select {
	case got := <-sub.Updates():
		if got.Seq != 1 {
			t.Fatal(got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
	select {
	case got := <-sub.Updates():
		t.Fatalf("delivered twice: %+v", got)
	case <-time.After(200 * time.Millisecond):
	}
}
