package natlab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/netns"
	"github.com/peerdrop/peerdrop/internal/testenv"
	"github.com/peerdrop/peerdrop/internal/turnserver"
)

// NAT is a router's behaviour.
type NAT string

// NAT types.
const (
	Open           NAT = "open"
	FullCone       NAT = "full-cone"
	PortRestricted NAT = "port-restricted"
	Symmetric      NAT = "symmetric"
	UDPBlocked     NAT = "udp-blocked"
	// ResetRestricted is port-restricted, and it answers an unsolicited
	// inbound TCP SYN with a reset, as many home routers do (the others
	// drop it). A reset reaching the other side's early simultaneous-open
	// dial fails that dial and closes its own NAT's mapping.
	ResetRestricted NAT = "port-restricted-rst"
)

// NATs lists every type.
var NATs = []NAT{Open, FullCone, PortRestricted, Symmetric, UDPBlocked, ResetRestricted}

// ServerIP is the server host's public address; ServerAltIP its second,
// for STUN's RFC 5780 behaviour tests (miniupnpd's ext_perform_stun).
// ProxyIP is the server's third address: the signaling proxy of the
// first dht-node listens on ProxyIP:443 (coturn's TLS listener has port
// 443 of the other two).
var (
	ServerIP    = netip.MustParseAddr("203.0.113.10")
	ServerAltIP = netip.MustParseAddr("203.0.113.11")
	ProxyIP     = netip.MustParseAddr("203.0.113.12")
)

// Lab is one small internet.
type Lab struct {
	t        testing.TB
	Bin      string             // the peerdrop binary hosts run
	Internet *netns.NS          // the public segment's bridge
	Server   *netns.NS          // 203.0.113.10: coturn and the DHT nodes
	TURN     *turnserver.Server // STUN and TURN over TCP on 3478, TURN over TLS on 443
	PKI      labPKI             // the CA every host trusts, and the server's certificate
	// ProxyAddr is the signaling proxy's address (peerdrop-proxy://…#pin),
	// served by the first dht-node.
	ProxyAddr string

	mu      sync.Mutex
	sites   int
	public  int
	addrs   int // public addresses handed out (publicAddr)
	dhts    []*Proc
	DHTAddr []string // bootstrap addresses of the running dht-nodes
}

// New builds the public segment and the server host, and starts coturn
// and dhtNodes DHT bootstrap nodes on it. It skips (or fails under
// PEERDROP_REQUIRE_ALL) without root, iproute2, nftables or coturn.
func New(t testing.TB, bin string, dhtNodes int) *Lab {
	t.Helper()
	testenv.NeedCommand(t, "nft", "the NAT routers are nftables rule sets (Debian package nftables)")
	l := &Lab{t: t, Bin: bin}
	l.Internet = netns.New(t)
	l.Internet.IP(t, "link", "add", "br0", "type", "bridge")
	l.Internet.IP(t, "link", "set", "br0", "up")
	l.Server = netns.New(t)
	l.attachPublic(l.Server, "eth0", ServerIP)
	l.Server.IP(t, "addr", "add", ServerAltIP.String()+"/24", "dev", "eth0")
	l.Server.IP(t, "addr", "add", ProxyIP.String()+"/24", "dev", "eth0")
	l.PKI = newLabPKI(t, ServerIP, ServerAltIP, ProxyIP)
	l.TURN = turnserver.StartWith(t, turnserver.Options{
		Exec: []string{"ip", "netns", "exec", l.Server.Name},
		IP:   ServerIP, AltIP: ServerAltIP, Port: 3478,
		TLSPort: 443, CertFile: l.PKI.CertFile, KeyFile: l.PKI.KeyFile,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.Server.Dial(ctx, network, addr)
		},
	})
	for i := 0; i < dhtNodes; i++ {
		l.StartDHTNode()
	}
	return l
}

// publicAddr hands out the next address of the public segment (routers'
// WANs and open hosts: 203.0.113.20 to .254; a lab has room for about 117
// cells of two sites).
func (l *Lab) publicAddr() netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if 20+l.addrs > 254 {
		l.t.Fatalf("natlab: the public segment 203.0.113.0/24 is full (%d addresses given out)", l.addrs)
	}
	a := netip.AddrFrom4([4]byte{203, 0, 113, byte(20 + l.addrs)})
	l.addrs++
	return a
}

// attachPublic links ns to the public bridge as ifname with addr/24.
func (l *Lab) attachPublic(ns *netns.NS, ifname string, addr netip.Addr) {
	l.mu.Lock()
	l.public++
	port := fmt.Sprintf("pub%d", l.public)
	l.mu.Unlock()
	l.Internet.IP(l.t, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.Name)
	l.Internet.IP(l.t, "link", "set", port, "master", "br0", "up")
	ns.IP(l.t, "addr", "add", addr.String()+"/24", "dev", ifname)
	ns.IP(l.t, "link", "set", ifname, "up")
}

// StartDHTNode starts one more peerdrop dht-node on the server host, on
// port 6882, 6883, …, and returns it.
func (l *Lab) StartDHTNode() *Proc {
	l.mu.Lock()
	port := 6882 + len(l.dhts)
	l.mu.Unlock()
	addr := netip.AddrPortFrom(ServerIP, uint16(port)).String()
	var boot []string
	boot = append(boot, l.DHTAddr...)
	args := []string{"--home", l.t.TempDir(), "--json", "--listen", addr, "dht-node", "--stats", "0"}
	if len(boot) > 0 {
		args = append(args, "--bootstrap", strings.Join(boot, ","))
	} else {
		args = append(args, "--proxy", netip.AddrPortFrom(ProxyIP, 443).String())
	}
	p := l.start(l.Server, "dht", args...)
	p.Next(10*time.Second, "listening", nil)
	if len(boot) == 0 {
		ev := p.Next(10*time.Second, "proxy", nil)
		l.mu.Lock()
		l.ProxyAddr, _ = ev["addr"].(string)
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.dhts = append(l.dhts, p)
	l.DHTAddr = append(l.DHTAddr, addr)
	l.mu.Unlock()
	return p
}

// DHTNodes returns the running dht-node processes.
func (l *Lab) DHTNodes() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.dhts...)
}

// Site is a router with a NAT in front of hosts (none for Open).
type Site struct {
	lab    *Lab
	NAT    NAT
	Router *netns.NS // nil for Open
	WAN    netip.Addr
	n      int // site number: LAN 10.n.0.0/24
	hosts  int
}

// Site adds a site behind a router of the given type.
func (l *Lab) Site(nat NAT) *Site {
	l.mu.Lock()
	l.sites++
	n := l.sites
	l.mu.Unlock()
	s := &Site{lab: l, NAT: nat, n: n}
	if nat == Open {
		return s
	}
	s.Router = netns.New(l.t)
	s.WAN = l.publicAddr()
	l.attachPublic(s.Router, "wan0", s.WAN)
	s.Router.IP(l.t, "link", "add", "lanbr", "type", "bridge")
	s.Router.IP(l.t, "addr", "add", fmt.Sprintf("10.%d.0.1/24", n), "dev", "lanbr")
	s.Router.IP(l.t, "link", "set", "lanbr", "up")
	run(l.t, "ip", "netns", "exec", s.Router.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nft(l.t, s.Router, natRules(nat, n))
	return s
}

// natRules is the router's nftables rule set for a NAT type, for site n
// (LAN 10.n.0.0/24). Only the LAN's traffic is translated: the router's
// own (miniupnpd's STUN) leaves with its own address and port.
func natRules(nat NAT, n int) string {
	masq := "masquerade"
	if nat == Symmetric {
		masq = "masquerade fully-random"
	}
	var b strings.Builder
	b.WriteString("table ip natlab {\n")
	if nat == FullCone {
		// Endpoint-independent filtering: outbound packets teach the map
		// which inside address and port a public port belongs to; inbound
		// packets to that port go there, from anyone.
		b.WriteString(`  map cone {
    type inet_proto . inet_service : ipv4_addr . inet_service
    flags dynamic, timeout
    timeout 10m
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan0" meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @cone
  }
  chain learn {
    type filter hook postrouting priority srcnat + 1; policy accept;
    oifname "wan0" meta l4proto { tcp, udp } update @cone { meta l4proto . th sport : ct original ip saddr . ct original proto-src }
  }
`)
	}
	fmt.Fprintf(&b, `  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip saddr 10.%d.0.0/24 %s
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
`, n, masq)
	if nat == UDPBlocked {
		b.WriteString("    meta l4proto udp drop\n")
	}
	reset := ""
	if nat == ResetRestricted {
		reset = "    iifname \"wan0\" meta l4proto tcp reject with tcp reset\n"
	}
	fmt.Fprintf(&b, `    iifname "lanbr" accept
    ct state established,related accept
    ct status dnat accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
%s    iifname "wan0" drop
  }
}
`, reset)
	return b.String()
}

func nft(t testing.TB, ns *netns.NS, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s\n%s", ns.Name, err, out, rules)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out.String())
	}
}
