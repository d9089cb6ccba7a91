package dht

import (
	"fmt"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

// BenchmarkIdle measures what an idle device costs the DHT: the packets
// its node sends per second while its Signaler (default settings) polls
// the mailboxes of 1, 10 and 100 contact devices on a 64-node loopback
// DHT. The baseline, measured in the same run, is a node without the
// storer cache (StorerRefresh < 0: every poll is a get traversal, as
// before the cache); the ratio is baseline / cached. Each mode first
// polls every contact once (the cache fills), then is measured for at
// least one round of polls.
func BenchmarkIdle(b *testing.B) {
	nodes := testDHT(b, 64, func(i int, c *Config) {
		if i == 62 {
			c.StorerRefresh = -1
		}
	})
	baseline, cached := nodes[62], nodes[63]
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
			me := newWho(b)
			var peers []signaling.Peer
			for i := 0; i < n; i++ {
				peers = append(peers, newWho(b).peer())
			}
			rate := func(d *Node) float64 {
				s, err := signaling.New(&signaling.Config{Device: me.dev, Transport: d, Allow: func(identity.AccountID) bool { return true }})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				for _, p := range peers {
					_ = s.Watch(p)
				}
				// One round over every contact at PollBudget (10/s), and
				// a second for the traversal of the last.
				time.Sleep(time.Duration(n)*100*time.Millisecond + 2*time.Second)
				// Polls come in rounds (each contact every n/10 s): the
				// window spans at least one round.
				before, start := d.Stats().PacketsSent, time.Now()
				time.Sleep(max(3*time.Second, time.Duration(n)*100*time.Millisecond+time.Second))
				return float64(d.Stats().PacketsSent-before) / time.Since(start).Seconds()
			}
			var base, with float64
			for i := 0; i < b.N; i++ {
				base, with = rate(baseline), rate(cached)
			}
			b.ReportMetric(base, "traversal-pkts/s")
			b.ReportMetric(with, "cached-pkts/s")
			b.ReportMetric(with*3600, "cached-pkts/h")
			b.ReportMetric(base/with, "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}
