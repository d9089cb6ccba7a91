package proxy

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/dht"
)

// BenchmarkDelivery: request delivery and answer times of one signaling
// exchange, in the same run, on an 8-node loopback DHT whose first node
// (Serve) has the proxy in front: both devices on the UDP DHT (the
// baseline), the sender through the proxy alone (a UDP-blocked network)
// and both through the proxy. Reports p50 and p99 of each and the proxy's
// p50 over the DHT's.
func BenchmarkDelivery(b *testing.B) {
	nodes := benchDHT(b, 8)
	_, addr := testServer(b, nodes[0], nil)
	viaProxy := func() signaling.Transport { return testClient(b, addr, nil) }
	type run struct {
		name             string
		sender, receiver signaling.Transport
	}
	runs := []run{
		{"dht", nodes[2], nodes[5]},
		{"sender-proxy", viaProxy(), nodes[5]},
		{"both-proxy", viaProxy(), viaProxy()},
	}
	p50 := map[string]float64{}
	for _, r := range runs {
		deliver, answer := exchanges(b, r.sender, r.receiver, b.N)
		b.ReportMetric(pct(deliver, 0.5), r.name+"-request-p50-ms")
		b.ReportMetric(pct(deliver, 0.99), r.name+"-request-p99-ms")
		b.ReportMetric(pct(answer, 0.5), r.name+"-answer-p50-ms")
		b.ReportMetric(pct(answer, 0.99), r.name+"-answer-p99-ms")
		p50[r.name] = pct(deliver, 0.5) + pct(answer, 0.5)
	}
	b.ReportMetric(p50["sender-proxy"]/p50["dht"], "sender-proxy/dht-ratio")
	b.ReportMetric(p50["both-proxy"]/p50["dht"], "both-proxy/dht-ratio")
	b.ReportMetric(0, "ns/op")
}

func pct(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

// benchDHT is n DHT nodes on loopback, the first a Serve node that the
// others bootstrap from.
func benchDHT(b *testing.B, n int) []*dht.Node {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var nodes []*dht.Node
	for i := 0; i < n; i++ {
		c := &dht.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Serve: i == 0}
		if i > 0 {
			c.Bootstrap = []netip.AddrPort{nodes[0].Addr()}
		}
		d, err := dht.New(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		nodes = append(nodes, d)
	}
	for _, d := range append(nodes[1:], nodes...) {
		if err := d.Bootstrap(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return nodes
}

// exchanges runs n request/answer exchanges from a device on sender to
// one on receiver and returns the delivery and answer times.
func exchanges(b *testing.B, sender, receiver signaling.Transport, n int) (deliver, answer []time.Duration) {
	newDev := func() (*identity.Device, signaling.Peer) {
		a, err := identity.NewAccount(nil)
		if err != nil {
			b.Fatal(err)
		}
		d, err := a.NewDevice(nil, time.Now(), 0)
		if err != nil {
			b.Fatal(err)
		}
		return d, signaling.Peer{Account: a.ID(), Device: d.ID(), Sealing: d.Cert().SealingKey}
	}
	da, pa := newDev()
	dc, pc := newDev()
	sa, err := signaling.New(&signaling.Config{Device: da, Transport: sender})
	if err != nil {
		b.Fatal(err)
	}
	defer sa.Close()
	sc, err := signaling.New(&signaling.Config{Device: dc, Transport: receiver})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	_ = sc.Watch(pa)
	time.Sleep(time.Second) // the reader settles: its subscription is live
	ctx := context.Background()
	for i := 0; i < n; i++ {
		start := time.Now()
		type res struct {
			at  time.Time
			err error
		}
		done := make(chan res, 1)
		go func() {
			_, err := sa.Request(ctx, pc, []byte("a=ice-ufrag:abcd"))
			done <- res{time.Now(), err}
		}()
		in := <-sc.Incoming()
		deliver = append(deliver, time.Since(start))
		ansStart := time.Now()
		if err := in.Answer(ctx, []byte("a=ice-ufrag:efgh")); err != nil {
			b.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			b.Fatal(r.err)
		}
		answer = append(answer, r.at.Sub(ansStart))
	}
	return deliver, answer
}
