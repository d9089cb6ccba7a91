package dht

import (
	"fmt"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

// BenchmarkIdle measures what an idle device costs the DHT: the packets
// its node sends per second while its Signaler (default settings) watches
// 1, 10 and 100 contact devices on a 64-node loopback DHT whose nodes run
// the listen extension. Three devices are measured in the same run, one
// after the other: the baseline, whose every poll is a get traversal
// (StorerRefresh < 0, NoListen: as before the storer cache), one that
// polls the cached storers (NoListen: as over nodes without the
// extension), and one that listens (the default). Each starts, polls
// every contact once and subscribes, then is measured for at least one
// round of polls or keep-alives. Ratios are to the baseline.
func BenchmarkIdle(b *testing.B) {
	nodes := testDHT(b, 64, func(i int, c *Config) {
		switch i {
		case 61:
			c.StorerRefresh, c.NoListen = -1, true
		case 62:
			c.NoListen = true
		}
	})
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
			me := newWho(b)
			var peers []signaling.Peer
			for i := 0; i < n; i++ {
				peers = append(peers, newWho(b).peer())
			}
			rate := func(d *Node, window time.Duration) float64 {
				s, err := signaling.New(&signaling.Config{Device: me.dev, Transport: d, Allow: func(identity.AccountID) bool { return true }})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				for _, p := range peers {
					_ = s.Watch(p)
				}
				// One round over every contact at PollBudget (10/s), and
				// time for the last traversal and the subscriptions.
				time.Sleep(time.Duration(n)*100*time.Millisecond + 3*time.Second)
				before, start := d.Stats().PacketsSent, time.Now()
				time.Sleep(window)
				return float64(d.Stats().PacketsSent-before) / time.Since(start).Seconds()
			}
			// Polls come in rounds (each contact every n/10 s), keep-alives
			// every 25 s: each window spans at least one round.
			poll := max(3*time.Second, time.Duration(n)*100*time.Millisecond+time.Second)
			var base, cached, listened float64
			for i := 0; i < b.N; i++ {
				base, cached, listened = rate(nodes[61], poll), rate(nodes[62], poll), rate(nodes[63], listenEvery+time.Second)
			}
			b.ReportMetric(base, "traversal-pkts/s")
			b.ReportMetric(cached, "cached-pkts/s")
			b.ReportMetric(listened, "listen-pkts/s")
			b.ReportMetric(listened*3600, "listen-pkts/h")
			b.ReportMetric(base/cached, "cached-ratio")
			b.ReportMetric(base/max(listened, 1.0/3600), "listen-ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkIdleOneNode is BenchmarkIdle on the smallest own DHT, one
// "peerdrop dht-node" that devices bootstrap from: every mailbox is
// stored there, so a listening device's keep-alives do not grow with its
// contacts.
func BenchmarkIdleOneNode(b *testing.B) {
	nodes := testDHT(b, 2, nil)
	dev := nodes[1]
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
			me := newWho(b)
			var rate float64
			for i := 0; i < b.N; i++ {
				s, err := signaling.New(&signaling.Config{Device: me.dev, Transport: dev, Allow: func(identity.AccountID) bool { return true }})
				if err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n; j++ {
					_ = s.Watch(newWho(b).peer())
				}
				time.Sleep(time.Duration(n)*100*time.Millisecond + 3*time.Second)
				before, start := dev.Stats().PacketsSent, time.Now()
				time.Sleep(listenEvery + time.Second)
				rate = float64(dev.Stats().PacketsSent-before) / time.Since(start).Seconds()
				s.Close()
			}
			b.ReportMetric(rate, "listen-pkts/s")
			b.ReportMetric(rate*3600, "listen-pkts/h")
			b.ReportMetric(0, "ns/op")
		})
	}
}
