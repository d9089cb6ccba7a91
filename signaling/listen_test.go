package signaling

import (
	"context"
	"testing"
	"time"
)

// TestListenedIdle: over a Transport that notifies puts, an idle reader
// polls a watched peer only every ListenedPoll, yet a request arrives at
// once; over the same Transport without notifications it polls at the
// poll budget.
func TestListenedIdle(t *testing.T) {
	idleGets := func(notify bool) (int, time.Duration) {
		a, b := newWho(t), newWho(t)
		tr := &MemoryTransport{Notify: notify}
		sa, sb := testSignalers(t, tr, a, b)
		_ = sb.Watch(a.peer())
		time.Sleep(300 * time.Millisecond) // the first poll and subscription
		before := sb.Stats().Gets
		time.Sleep(time.Second)
		gets := int(sb.Stats().Gets - before)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		go func() { _, _ = sa.Request(ctx, b.peer(), []byte("hello")) }()
		select {
		case in := <-sb.Incoming():
			if string(in.Msg.Payload) != "hello" {
				t.Fatalf("payload %q", in.Msg.Payload)
			}
		case <-ctx.Done():
			t.Fatalf("notify=%v: no request", notify)
		}
		took := time.Since(start)
		cancel()
		sa.Close()
		sb.Close()
		return gets, took
	}
	listened, fast := idleGets(true)
	polled, _ := idleGets(false)
	t.Logf("idle gets in 1 s: %d listened, %d polled; request delivered in %v when listened", listened, polled, fast)
	if listened > 1 {
		t.Errorf("%d gets in 1 s while listened, want ≤ 1", listened)
	}
	if polled < 5 {
		t.Errorf("only %d gets in 1 s while polled: the comparison means nothing", polled)
	}
	if fast > 500*time.Millisecond {
		t.Errorf("a notified request took %v", fast)
	}
}
