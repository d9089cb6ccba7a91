package dht

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// BenchmarkSustained makes b.N request/answer exchanges (default Signaler
// settings, one after the other) between two devices, through one DHT node
// ("peerdrop dht-node" with the two devices' own nodes: 3 nodes) and
// through an 8-node DHT, and reports how many were lost (target 0), the
// exchanges per second, and the most items any node stores (target: a
// constant per device pair, however many exchanges; 8 for this pair).
// The baseline is the item count the old scheme needed, one new item per
// request and per answer: "items-vs-one-per-message" is stored / 2·b.N.
// Run it as the issue asks with -benchtime 10000x (about 2 min each).
func BenchmarkSustained(b *testing.B) {
	for _, size := range []int{3, 8} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			nodes := testDHT(b, size, nil)
			da, db := nodes[1], nodes[size-1]
			a, c := newWho(b), newWho(b)
			sa, err := signaling.New(&signaling.Config{Device: a.dev, Transport: da})
			if err != nil {
				b.Fatal(err)
			}
			defer sa.Close()
			sc, err := signaling.New(&signaling.Config{Device: c.dev, Transport: db})
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			_ = sc.Watch(a.peer())
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go answerAll(ctx, sc, &wg)
			defer func() { cancel(); wg.Wait() }()

			b.ResetTimer()
			start := time.Now()
			lost, first := exchanges(ctx, sa, c.peer(), b.N, 1)
			elapsed := time.Since(start)
			b.StopTimer()
			items, dropped := 0, int64(0)
			for _, d := range nodes {
				st := d.Stats()
				items = max(items, st.StoredItems)
				dropped += st.QueriesDropped
			}
			if lost > 0 {
				b.Errorf("%d of %d exchanges lost, first: %v", lost, b.N, first)
			}
			if items > 8 {
				b.Errorf("a node stores %d items for one device pair, want at most 8", items)
			}
			b.ReportMetric(float64(lost), "lost")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exchanges/s")
			b.ReportMetric(float64(items), "max-items/node")
			b.ReportMetric(float64(items)/float64(2*b.N), "items-vs-one-per-message")
			b.ReportMetric(float64(dropped), "queries-dropped")
			b.ReportMetric(0, "ns/op")
		})
	}
}
