package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/peerdrop/peerdrop/internal/netns"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestLANDiscovery runs three DHT nodes with no bootstrap addresses in
// three network namespaces on one bridge: they find each other by
// multicast beacons alone, and an item put through one is found through
// another. Hostile beacons are dropped or rate-limited. Nothing leaves the
// namespaces.
func TestLANDiscovery(t *testing.T) {
	hosts := []*netns.NS{netns.New(t), netns.New(t), netns.New(t)}
	addrs := netns.Bridge(t, "10.99.0", hosts...)
	var nodes []*Node
	for _, h := range hosts {
		var d *Node
		err := h.Do(func() (err error) {
			d, err = New(&Config{LAN: &LANConfig{Interval: 500 * time.Millisecond, MinRepeat: 200 * time.Millisecond, Interfaces: h.Interfaces}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		nodes = append(nodes, d)
	}
	waitFor(t, 10*time.Second, "every node to know the two others", func() bool {
		for _, d := range nodes {
			if d.Stats().Nodes < 2 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, priv, _ := ed25519.GenerateKey(nil)
	it, _ := signaling.NewItem(priv, []byte("lan"), 1, []byte("found on the LAN"))
	if err := nodes[0].Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	got, err := nodes[2].Get(ctx, it.Key, it.Salt)
	if err != nil || string(got.Value) != "found on the LAN" {
		t.Fatalf("get through another node: %q, %v", got.Value, err)
	}
	// No node has a bootstrap address: beacons introduced them. A node
	// may add none itself when the others, having heard its beacon,
	// pinged it first (it happened in CI): every node beaconed, and
	// beacons added nodes.
	added := int64(0)
	for i, d := range nodes {
		st := d.Stats().LAN
		t.Logf("node %d (%s): %+v", i, addrs[i], st)
		if st.BeaconsSent == 0 {
			t.Errorf("node %d sent no beacon: %+v", i, st)
		}
		added += int64(st.NodesAdded)
	}
	if added < 2 {
		t.Errorf("beacons added %d nodes in all, want at least 2", added)
	}

	// Hostile beacons from the third host: garbage, a wrong magic, port
	// 0, then a flood of well-formed beacons with random IDs pointing at a
	// port where no node listens.
	before := nodes[0].Stats().LAN
	var conn *net.UDPConn
	err = hosts[2].Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ifs, _ := hosts[2].Interfaces()
	p := ipv4.NewPacketConn(conn)
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			if err := p.SetMulticastInterface(&ifi); err != nil {
				t.Fatal(err)
			}
		}
	}
	group := net.UDPAddrFromAddrPort(DefaultLANGroup4)
	bad := [][]byte{[]byte("garbage"), append([]byte("XXLAN1"), make([]byte, 22)...), append(append([]byte(lanMagic), make([]byte, 20)...), 0, 0)}
	for _, b := range bad {
		if _, err := conn.WriteTo(b, group); err != nil {
			t.Fatal(err)
		}
	}
	for range 500 {
		b := append([]byte(lanMagic), make([]byte, 22)...)
		rand.Read(b[6:26])
		b[26], b[27] = 0x00, 0x09 // discard port: nobody answers
		if _, err := conn.WriteTo(b, group); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the bad beacons counted", func() bool {
		return nodes[0].Stats().LAN.BeaconsDropped >= before.BeaconsDropped+int64(len(bad))
	})
	time.Sleep(300 * time.Millisecond)
	after := nodes[0].Stats().LAN
	// 500 beacons from one address within MinRepeat or two cost at most a
	// few pings, never one each.
	if pings := after.Pinged - before.Pinged; pings > 5 {
		t.Fatalf("a beacon flood caused %d pings", pings)
	}
	if nodes[0].Stats().Nodes > 2 {
		t.Fatalf("a node that never answered was added: %d nodes", nodes[0].Stats().Nodes)
	}
	// Still working.
	it2, _ := signaling.NewItem(priv, []byte("lan"), 2, []byte("still here"))
	if err := nodes[1].Put(ctx, it2); err != nil {
		t.Fatal(err)
	}
}

func TestParseBeacon(t *testing.T) {
	src := netip.MustParseAddrPort("10.0.0.7:6798")
	b := append(append([]byte(lanMagic), make([]byte, 20)...), 0x1f, 0x90)
	b[6] = 0xAB
	id, to, ok := parseBeacon(b, src, false)
	if !ok || id[0] != 0xAB || to != netip.MustParseAddrPort("10.0.0.7:8080") {
		t.Fatalf("%x %v %v", id, to, ok)
	}
	if _, _, ok := parseBeacon(b, src, true); ok {
		t.Fatal("IPv4 source accepted on IPv6 discovery")
	}
	if _, _, ok := parseBeacon(b, netip.MustParseAddrPort("239.1.2.3:1"), false); ok {
		t.Fatal("multicast source accepted")
	}
	if _, _, ok := parseBeacon(b[:27], src, false); ok {
		t.Fatal("short beacon accepted")
	}
}

func FuzzBeacon(f *testing.F) {
	f.Add(append(append([]byte(lanMagic), make([]byte, 20)...), 0x1f, 0x90), []byte{10, 0, 0, 7})
	f.Add([]byte("PDLAN1"), []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b, ip []byte) {
		a, _ := netip.AddrFromSlice(ip)
		id, to, ok := parseBeacon(b, netip.AddrPortFrom(a, 1), false)
		if ok && (to.Port() == 0 || !to.Addr().Is4() || to.Addr() != a.Unmap() || len(b) != beaconSize || [20]byte(b[6:26]) != id) {
			t.Fatalf("accepted %x from %v as %x %v", b, a, id, to)
		}
	})
}
