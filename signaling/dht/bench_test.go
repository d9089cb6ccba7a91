package dht

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// BenchmarkSignaling measures, on an 8-node loopback DHT with default
// Signaler settings, how long a request takes to reach the recipient
// (Request called → Incoming delivered), how long the answer takes to come
// back (Answer called → Request returns), and the DHT packets all nodes
// sent per request/answer exchange. Targets: request p50 ≤ 150 ms, p99 ≤
// 1 s; answer p50 ≤ 50 ms.
func BenchmarkSignaling(b *testing.B) {
	nodes := testDHT(b, 8, nil)
	ctx := context.Background()
	a, c := newWho(b), newWho(b)
	sa, err := signaling.New(&signaling.Config{Device: a.dev, Transport: nodes[2]})
	if err != nil {
		b.Fatal(err)
	}
	defer sa.Close()
	sc, err := signaling.New(&signaling.Config{Device: c.dev, Transport: nodes[5]})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	_ = sc.Watch(a.peer())
	time.Sleep(300 * time.Millisecond) // let the reader settle into its interval

	packets := func() (n int64) {
		for _, d := range nodes {
			n += d.Stats().PacketsSent
		}
		return n
	}
	var deliver, answer []time.Duration
	before := packets()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		type res struct {
			at  time.Time
			err error
		}
		done := make(chan res, 1)
		go func() {
			_, err := sa.Request(ctx, c.peer(), []byte("a=ice-ufrag:abcd"))
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
	b.StopTimer()
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(deliver, 0.5), "request-p50-ms")
	b.ReportMetric(pct(deliver, 0.99), "request-p99-ms")
	b.ReportMetric(pct(answer, 0.5), "answer-p50-ms")
	b.ReportMetric(pct(answer, 0.99), "answer-p99-ms")
	b.ReportMetric(float64(packets()-before)/float64(b.N), "packets/exchange")
	b.ReportMetric(0, "ns/op")
}
