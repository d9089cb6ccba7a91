package ice

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// forwarder is a port mapping in miniature: a TCP listener on another
// loopback address that forwards every connection to one target.
type forwarder struct {
	ln     net.Listener
	target netip.AddrPort
	wg     sync.WaitGroup
	used   chan struct{}
}

func (f *forwarder) MapPort(ctx context.Context, local netip.AddrPort) (netip.AddrPort, error) {
	f.target = local
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			select {
			case f.used <- struct{}{}:
			default:
			}
			d, err := net.Dial("tcp", f.target.String())
			if err != nil {
				c.Close()
				continue
			}
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(d, c); d.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	return addrPortOf(f.ln.Addr()), nil
}

func TestPortMapperCandidate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on loopback: %v", err)
	}
	fw := &forwarder{ln: ln, used: make(chan struct{}, 1)}
	defer func() { ln.Close(); fw.wg.Wait() }()
	cfgA := testConfig()
	cfgA.PortMapper = fw
	a := newTestAgent(t, cfgA)
	b := newTestAgent(t, testConfig())
	sa, sb := connectPair(t, ctx, a, b, false, true, func(toA, toB *Description) {
		// B may only reach A through the mapping, and A may not dial B.
		var keep []Candidate
		for _, c := range toB.Candidates {
			if c.Type == ServerReflexive {
				keep = append(keep, c)
			}
		}
		toB.Candidates = keep
		toA.Candidates = nil
	})
	if sa.err != nil || sb.err != nil {
		t.Fatalf("connect: A %v; B %v", sa.err, sb.err)
	}
	if got := sb.conn.Selected().Remote; got.Type != ServerReflexive || got.Addr != addrPortOf(ln.Addr()) {
		t.Errorf("B selected %+v, want the mapped candidate", got)
	}
	select {
	case <-fw.used:
	default:
		t.Error("the mapping was never used")
	}
	exchange(t, sa.conn, sb.conn, 256<<10)
	sa.conn.Close()
	sb.conn.Close()
}
