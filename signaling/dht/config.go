package dht

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Config configures a DHT node. The zero value is a node on an
// ephemeral UDP port of every interface that knows no other node: safe
// offline, useful once given bootstrap addresses or LAN discovery.
type Config struct {
	// Listen is the UDP address. Default: 0.0.0.0:0.
	Listen netip.AddrPort
	// Bootstrap are the nodes to start from. Default: none.
	Bootstrap []netip.AddrPort
	// Global adds the public mainline DHT routers (router.bittorrent.com
	// and friends) to Bootstrap. Default: false; nothing leaves the local
	// network unless a user asks.
	Global bool
	// StateFile keeps the routing table across restarts (written on Close,
	// read on start). Default: none.
	StateFile string
	// Exp is how long this node keeps an item after its last put.
	// Default: 2h.
	Exp time.Duration
	// MaxItems bounds the items this node stores; the oldest go first.
	// Default: 10000.
	MaxItems int
	// PerSource bounds the new items one source (IP and port) may store
	// here within Exp; one IP may store 8 times as many (many devices
	// share a NAT). Updates of items already stored are never refused.
	// Peerdrop devices use a constant number of items per device pair
	// (see mailbox.go). Default: 512.
	PerSource int
	// SendRate and SendBurst limit this node's outgoing packets. Defaults:
	// 500/s, 100. (anacrolix/dht's default limiter is shared by every node
	// of the process at 25/s.)
	SendRate  float64
	SendBurst int
	// Maintain is how often the node pings the table's nodes it has not
	// heard from lately and refreshes its table by find_node traversals
	// (see citizen.go). Default: 5m.
	Maintain time.Duration
	// StorerRefresh is how long the nodes found storing a target are asked
	// directly before a traversal looks for them again (see storers.go).
	// Negative: no cache, every get and put traverses. Default: 30m.
	StorerRefresh time.Duration
	// ReadOnly says when this node declares itself read-only (BEP 43):
	// others then keep it out of their routing tables, since they could
	// not reach it (see readonly.go). Default: ReadOnlyNever, a full node;
	// devices use ReadOnlyBehindNAT.
	ReadOnly ReadOnly
	// NoListen turns off this node's subscriptions at other nodes (its
	// Subscriptions are never Listening: every target is polled, as with
	// nodes that lack the extension). It still serves others'
	// subscriptions. Default: false.
	NoListen bool
	// Serve marks a node that serves others: the dht-node command and the
	// node behind a signaling proxy (package signaling/proxy). Such a node
	// is a storer like any other, so it keeps the items it puts in its own
	// store too (where the devices that bootstrap from it find them, even
	// when it knows no other full node), and a target it stores is
	// Listening. (Every node reads its own store in gets and notifies its
	// Subscriptions of the puts others store at it.) Default: false (a
	// device stores only what others put).
	Serve bool
	// LAN, if set, discovers DHT nodes on the local network by multicast
	// (see LANConfig). Default: off.
	LAN *LANConfig
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of c (nil: the zero Config) with every
// unset field at its documented default.
func (cfg *Config) withDefaults() Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if !c.Listen.IsValid() {
		c.Listen = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	if c.Exp == 0 {
		c.Exp = 2 * time.Hour
	}
	if c.MaxItems == 0 {
		c.MaxItems = 10000
	}
	if c.PerSource == 0 {
		c.PerSource = 512
	}
	if c.SendRate == 0 {
		c.SendRate = 500
	}
	if c.SendBurst == 0 {
		c.SendBurst = 100
	}
	if c.Maintain == 0 {
		c.Maintain = 5 * time.Minute
	}
	if c.StorerRefresh == 0 {
		c.StorerRefresh = 30 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// LANConfig configures multicast discovery of DHT nodes on the local
// network. It is off unless Config.LAN is set.
type LANConfig struct {
	// Group is the multicast group and port, of the DHT node's address
	// family. Default: DefaultLANGroup4 or DefaultLANGroup6.
	Group netip.AddrPort
	// Interval between beacons. Default: 30s.
	Interval time.Duration
	// MinRepeat is how long a source is not pinged again. Default: 10s.
	MinRepeat time.Duration
	// PingRate bounds the pings beacons cause, per second. Default: 20.
	PingRate float64
	// Interfaces lists the candidate interfaces; it is called at start
	// and before every beacon, so interfaces that come up later are used.
	// Default: net.Interfaces.
	Interfaces func() ([]net.Interface, error)
}

// withDefaults returns a copy of c with every unset field at its
// documented default, or an error if Group is not a multicast group of the
// DHT node's family (v6).
func (c LANConfig) withDefaults(v6 bool) (LANConfig, error) {
	if !c.Group.IsValid() {
		c.Group = DefaultLANGroup4
		if v6 {
			c.Group = DefaultLANGroup6
		}
	}
	if !c.Group.Addr().IsMulticast() || c.Group.Addr().Is6() != v6 {
		return c, fmt.Errorf("dht: LAN group %s is not a multicast group of the DHT node's address family", c.Group)
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.MinRepeat <= 0 {
		c.MinRepeat = 10 * time.Second
	}
	if c.PingRate <= 0 {
		c.PingRate = 20
	}
	if c.Interfaces == nil {
		c.Interfaces = net.Interfaces
	}
	return c, nil
}
