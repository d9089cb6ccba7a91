package natlab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop/internal/netns"
	"github.com/peerdrop/peerdrop/internal/testenv"
)

// Host is a machine of a site, running peerdrop.
type Host struct {
	lab    *Lab
	Site   *Site
	NS     *netns.NS
	Name   string
	Addr   netip.Addr
	Home   string
	Shaper *Shaper // the access link's shaper; nil if not shaped
	// TURN adds the lab's TURN server to this host's commands: over TCP
	// (port 3478), or over TLS on port 443 with TURNTLS.
	TURN, TURNTLS bool
	// Proxy adds the lab's signaling proxy (--proxy).
	Proxy bool
	// NoSTUN leaves out the lab's STUN server (coturn on the server host),
	// which every host is otherwise given, as a public one would be.
	NoSTUN bool
	// Extra options for every command of this host.
	Extra []string
}

// Host adds a host to the site; shape, if not nil, shapes its access link.
func (s *Site) Host(name string, shape *Shape) *Host {
	l := s.lab
	l.mu.Lock()
	s.hosts++
	k := s.hosts
	l.mu.Unlock()
	h := &Host{lab: l, Site: s, Name: name, NS: netns.New(l.t), Home: filepath.Join(l.t.TempDir(), name)}
	var upstream *netns.NS
	var bridge string
	if s.NAT == Open {
		h.Addr = l.publicAddr()
		upstream, bridge = l.Internet, "br0"
	} else {
		h.Addr = netip.AddrFrom4([4]byte{10, byte(s.n), 0, byte(10 + k)})
		upstream, bridge = s.Router, "lanbr"
	}
	port := fmt.Sprintf("h%d", k)
	if s.NAT == Open {
		l.mu.Lock()
		l.public++
		port = fmt.Sprintf("pub%d", l.public)
		l.mu.Unlock()
	}
	if shape == nil {
		upstream.IP(l.t, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS.Name)
	} else {
		// host eth0 <-> link ns lnk0 … shaper … lnk1 <-> upstream port
		link := netns.New(l.t)
		link.IP(l.t, "link", "add", "lnk0", "type", "veth", "peer", "name", "eth0", "netns", h.NS.Name)
		link.IP(l.t, "link", "add", "lnk1", "type", "veth", "peer", "name", port, "netns", upstream.Name)
		h.Shaper = startShaper(l.t, link, "lnk0", "lnk1", *shape)
		// veth leaves checksums to the receiving end's "hardware"; frames
		// copied through a packet socket would arrive with bad ones.
		testenv.NeedCommand(l.t, "ethtool", "turns checksum offload off on shaped links")
		run(l.t, "ip", "netns", "exec", h.NS.Name, "ethtool", "-K", "eth0", "tx", "off")
		run(l.t, "ip", "netns", "exec", upstream.Name, "ethtool", "-K", port, "tx", "off")
	}
	upstream.IP(l.t, "link", "set", port, "master", bridge, "up")
	h.NS.IP(l.t, "addr", "add", h.Addr.String()+"/24", "dev", "eth0")
	h.NS.IP(l.t, "link", "set", "eth0", "up")
	if s.NAT != Open {
		h.NS.IP(l.t, "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", s.n))
	}
	return h
}

// argv is the command line of a peerdrop command on this host.
func (h *Host) argv(args ...string) []string {
	out := []string{"ip", "netns", "exec", h.NS.Name, h.lab.Bin, "--home", h.Home, "--json",
		"--listen", netip.AddrPortFrom(h.Addr, 0).String()}
	if boot := h.lab.bootstrap(); boot != "" {
		out = append(out, "--bootstrap", boot)
	}
	if !h.NoSTUN {
		out = append(out, "--stun", h.lab.TURN.STUNURL())
	}
	if h.TURN {
		t := h.lab.TURN
		url := t.TURNURL()
		if h.TURNTLS {
			url = t.TURNSURL()
		}
		out = append(out, "--turn", url, "--turn-user", t.User, "--turn-pass", t.Password)
	}
	if h.Proxy {
		out = append(out, "--proxy", h.lab.ProxyAddr)
	}
	out = append(out, h.Extra...)
	return append(out, args...)
}

func (l *Lab) bootstrap() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.DHTAddr, ",")
}

// env is a host's environment: clean, trusting the lab's CA (as a real
// host trusts the public CAs, for turns: servers).
func (h *Host) env() []string {
	return CleanEnv(h.lab.t.TempDir(), "SSL_CERT_FILE="+h.lab.PKI.CAFile)
}

// Start runs a peerdrop command on the host in the background.
func (h *Host) Start(stdin string, args ...string) *Proc {
	return StartProc(h.lab.t, h.env(), stdin, h.argv(args...)...)
}

// Run runs a peerdrop command on the host to its end.
func (h *Host) Run(args ...string) (stdout, stderr string, code int) {
	h.lab.t.Helper()
	cmd := exec.Command("ip", h.argv(args...)[1:]...)
	cmd.Env = h.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		h.lab.t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// start runs a peerdrop command in a namespace (the server's dht-nodes).
func (l *Lab) start(ns *netns.NS, _ string, args ...string) *Proc {
	argv := append([]string{"ip", "netns", "exec", ns.Name, l.Bin}, args...)
	return StartProc(l.t, CleanEnv(l.t.TempDir()), "", argv...)
}

// Init creates the host's identity and returns its contact string.
func (h *Host) Init() string {
	h.lab.t.Helper()
	out, errOut, code := h.Run("init", "--name", h.Name, "--device", h.Name+"-dev")
	if code != 0 {
		h.lab.t.Fatalf("%s: init: %d %s%s", h.Name, code, out, errOut)
	}
	_, rest, _ := strings.Cut(out, `"contact":"`)
	contact, _, _ := strings.Cut(rest, `"`)
	return contact
}

// Befriend makes two hosts' accounts contacts of each other.
func Befriend(a, b *Host, aContact, bContact string) {
	for _, c := range []struct {
		h       *Host
		contact string
	}{{a, bContact}, {b, aContact}} {
		if out, errOut, code := c.h.Run("contact", "add", c.contact); code != 0 {
			c.h.lab.t.Fatalf("%s: contact add: %d %s%s", c.h.Name, code, out, errOut)
		}
	}
}

// Recv starts peerdrop recv --yes on the host into dir and waits until it
// is published.
func (h *Host) Recv(dir string, args ...string) *Proc {
	h.lab.t.Helper()
	p := h.Start("", append([]string{"recv", "--yes", "--dir", dir}, args...)...)
	p.Next(60*time.Second, "ready", nil)
	return p
}
