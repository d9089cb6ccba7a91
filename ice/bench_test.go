package ice

import (
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/turnserver"
)

// BenchmarkConnect measures a whole connect on loopback (gather on both
// sides, description round trip through text, checks, nomination, switch)
// next to a plain TCP dial+accept measured in the same run, and reports
// p50/p99 of both. Target: direct connect p50 ≤ 20 ms.
func BenchmarkConnect(b *testing.B) {
	ctx := context.Background()
	ag1 := newTestAgent(b, testConfig())
	ag2 := newTestAgent(b, testConfig())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var ice, tcp []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sa, sb := connectPair(b, ctx, ag1, ag2, true, false, nil)
		ice = append(ice, time.Since(start))
		if sa.err != nil || sb.err != nil {
			b.Fatal(sa.err, sb.err)
		}
		sa.conn.Close()
		sb.conn.Close()
		sa.sess.Close()
		sb.sess.Close()

		start = time.Now()
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s := <-acc
		tcp = append(tcp, time.Since(start))
		c.Close()
		s.Close()
	}
	b.StopTimer()
	p := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(ice, 0.5), "p50-ms")
	b.ReportMetric(p(ice, 0.99), "p99-ms")
	b.ReportMetric(p(tcp, 0.5), "tcp-p50-ms")
	b.ReportMetric(p(tcp, 0.99), "tcp-p99-ms")
	b.ReportMetric(0, "ns/op")
}

const benchBytes = 256 << 20

// throughput copies n bytes from w to r and returns MB/s.
func throughput(b *testing.B, w io.Writer, r io.Reader, n int64) float64 {
	buf := make([]byte, 256<<10)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		var sent int64
		for sent < n {
			k, err := w.Write(buf[:min(int64(len(buf)), n-sent)])
			sent += int64(k)
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got, err := io.CopyN(io.Discard, r, n)
	if err != nil || got != n {
		b.Fatalf("read %d of %d: %v", got, n, err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

// BenchmarkThroughputDirect compares the selected direct link with a plain
// loopback TCP connection, alternating in the same run. Target: ratio ≥ 0.95.
func BenchmarkThroughputDirect(b *testing.B) {
	ctx := context.Background()
	ag1 := newTestAgent(b, testConfig())
	ag2 := newTestAgent(b, testConfig())
	sa, sb := connectPair(b, ctx, ag1, ag2, true, false, nil)
	if sa.err != nil || sb.err != nil {
		b.Fatal(sa.err, sb.err)
	}
	c1, c2 := tcpPair(b)
	b.SetBytes(benchBytes)
	var ice, tcp float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tcp += throughput(b, c1, c2, benchBytes)
		ice += throughput(b, sa.conn, sb.conn, benchBytes)
	}
	report(b, ice, tcp, b.N)
}

// BenchmarkThroughputRelay compares a relayed link through a real coturn
// with a plain TCP connection through the same coturn (a TURN TCP
// allocation and a peer dialing its relayed address, no ICE). One side is
// relay-only, so the link takes one hop through the server like the
// baseline (two relay-only sides would meet relay to relay: two hops).
// Target: ratio ≥ 0.8.
func BenchmarkThroughputRelay(b *testing.B) {
	ts := turnserver.Start(b)
	ctx := context.Background()
	ag1 := newTestAgent(b, turnConfig(ts, ModeRelayOnly))
	ag2 := newTestAgent(b, testConfig())
	sa, sb := connectPair(b, ctx, ag1, ag2, true, false, nil)
	if sa.err != nil || sb.err != nil {
		b.Fatal(sa.err, sb.err)
	}
	if sel := sa.conn.Selected(); !sel.Relayed || sel.Remote.Type == Relay {
		b.Fatalf("want one hop through our relay, got %+v", sel)
	}

	// Baseline: plain TCP through the same coturn.
	cfg, servers, err := turnConfig(ts, ModeAll).withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	r, err := allocate(ctx, &cfg, servers[0])
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	if err := r.permitPeers(ctx, []netip.Addr{netip.MustParseAddr("127.0.0.1")}); err != nil {
		b.Fatal(err)
	}
	got := make(chan net.Conn, 1)
	r.setIncoming(func(c net.Conn, _ netip.AddrPort) { got <- c })
	peer, err := net.Dial("tcp", r.relayed.String())
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	var relayed net.Conn
	select {
	case relayed = <-got:
	case <-time.After(5 * time.Second):
		b.Fatal("no relayed connection")
	}
	defer relayed.Close()

	b.SetBytes(benchBytes)
	var ice, plain float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plain += throughput(b, peer, relayed, benchBytes)
		ice += throughput(b, sa.conn, sb.conn, benchBytes)
	}
	report(b, ice, plain, b.N)
}

func report(b *testing.B, ice, base float64, n int) {
	b.ReportMetric(ice/float64(n), "MB/s")
	b.ReportMetric(base/float64(n), "baseline-MB/s")
	b.ReportMetric(ice/base, "ratio")
	b.Logf("%s: link %.0f MB/s, baseline %.0f MB/s, ratio %.2f (%d×)", b.Name(), ice/float64(n), base/float64(n), ice/base, n)
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c2 := <-acc
	if c2 == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}
