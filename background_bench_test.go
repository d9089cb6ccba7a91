package peerdrop

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkBackground: what an idle device in the background (poll
// budget 0.5 and contacts' lists every 10 min, as
// mobile.SetForeground(false) sets) costs per hour, with
// 10 contacts: through the UDP DHT (packets and bytes, its own node's
// maintenance included), and through a signaling proxy alone (requests
// and bytes on its one TLS connection). Bytes are UDP payloads and TCP
// payloads (TLS included); headers add 28 bytes a UDP packet, about 40 a
// TCP segment. Both devices idle at once; the window is
// PEERDROP_BENCH_WINDOW (default 60s), after PEERDROP_BENCH_SETTLE
// (default 200s, past the keepers' early republishes).
func BenchmarkBackground(b *testing.B) {
	window := time.Minute
	if s := os.Getenv("PEERDROP_BENCH_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	pn := newProxyNet(b)
	tn := &testNet{boot: pn.boot}
	var contacts []*testNode
	for i := 0; i < 10; i++ {
		contacts = append(contacts, tn.node(b, "contact-"+string(rune('a'+i)), nil))
	}
	settle := 200 * time.Second
	if s := os.Getenv("PEERDROP_BENCH_SETTLE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		settle = d
	}
	hour := float64(time.Hour) / float64(window)
	phone := func(name string, mod func(*Config)) *testNode {
		dev := tn.node(b, "phone-"+name, func(c *Config) {
			mod(c)
			c.ContactRefresh = 0 // the default (1 min), as on a phone
		})
		for i, c := range contacts {
			if _, err := dev.AddContact(c.Account(), fmt.Sprintf("c%d", i)); err != nil {
				b.Fatal(err)
			}
			if _, err := c.AddContact(dev.Account(), "phone-"+name); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range contacts {
			converge(b, []*testNode{dev}, []*testNode{c})
		}
		dev.SetPollBudget(0.5)                  // as mobile.SetForeground(false) sets it
		dev.SetContactRefresh(10 * time.Minute) // likewise
		return dev
	}
	for i := 0; i < b.N; i++ {
		// Both phones idle at once, measured over the same window.
		viaDHT := phone("dht", func(*Config) {})
		viaProxy := phone("proxy", func(c *Config) {
			c.Bootstrap = udpBlocked
			c.Proxies = []string{pn.addr}
		})
		// The keepers' early republishes (2 s, 8 s, 32 s, 128 s after
		// start) are over before the window (the next is at 640 s).
		time.Sleep(settle)
		d0, p0 := viaDHT.Stats(), viaProxy.Stats()
		time.Sleep(window)
		d1, p1 := viaDHT.Stats(), viaProxy.Stats()
		udp := func(a, b Stats) (packets, bytes float64) {
			return float64(b.DHT.PacketsSent+b.DHT.PacketsReceived-a.DHT.PacketsSent-a.DHT.PacketsReceived) * hour,
				float64(b.DHT.BytesSent+b.DHT.BytesReceived-a.DHT.BytesSent-a.DHT.BytesReceived) * hour
		}
		dp, db := udp(d0, d1)
		pp, pb := udp(p0, p1)
		px, px0 := p1.Proxies[0], p0.Proxies[0]
		pb += float64(px.BytesSent+px.BytesReceived-px0.BytesSent-px0.BytesReceived) * hour
		b.ReportMetric(dp, "dht-udp-packets/h")
		b.ReportMetric(db/1024, "dht-KiB/h")
		b.ReportMetric(float64(px.Requests-px0.Requests)*hour, "proxy-requests/h")
		b.ReportMetric(float64(px.Conns-px0.Conns)*hour, "proxy-conns/h")
		b.ReportMetric(pp, "proxy-phone-udp-packets/h")
		b.ReportMetric(pb/1024, "proxy-KiB/h")
		b.ReportMetric(pb/db, "proxy/dht-bytes-ratio")
	}
	b.ReportMetric(0, "ns/op")
}
