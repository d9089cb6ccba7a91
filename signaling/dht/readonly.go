package dht

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Read-only mode (BEP 43). A node behind a NAT that filters inbound
// packets can query others, but others cannot reach it: if it were in
// their routing tables, they would refer it to everyone, and every lookup
// through it would wait for a node that never answers (the NAT lets only
// the nodes it talked to lately through). Such a node says "ro": 1 in its
// queries; nodes then keep it out of their tables (anacrolix's and ours:
// no ping-back, see citizen.go), while it still gets its answers, stores
// its items on reachable nodes and receives the pd_notify of the nodes it
// subscribes at (its keep-alives hold its NAT open for them).
//
// With ReadOnlyBehindNAT a node finds out for itself: each reply carries
// the address its sender saw us at (BEP 42 "ip"); one that is none of our
// interfaces' addresses means a NAT, and the node is read-only for natFor
// from then on. Until the first reply it is read-only too: a node that
// queried us without "ro" is in our table, and a later reply of ours
// would make it a good node, referred to everyone. Our replies say "ro"
// as well while it is on (BEP 43 has read-only nodes not answer at all;
// we answer, for the pd_notify of the nodes we subscribe at, and the
// mark keeps the asker from adding us to its table).

// ReadOnly says when a node declares itself read-only (Config.ReadOnly).
type ReadOnly uint8

// Read-only modes.
const (
	// ReadOnlyNever: a full node (a "peerdrop dht-node", a device on a
	// LAN or with a public address).
	ReadOnlyNever ReadOnly = iota
	// ReadOnlyBehindNAT: read-only while replies show that a NAT is in
	// front of this node.
	ReadOnlyBehindNAT
	// ReadOnlyAlways: always read-only.
	ReadOnlyAlways
)

const natFor = 10 * time.Minute

// readOnly tracks the mode and, for ReadOnlyBehindNAT, what replies said.
type readOnly struct {
	mode     ReadOnly
	natAt    atomic.Int64 // Unix ns of the last reply that saw a NAT
	lastAt   atomic.Int64 // Unix ns of the last reply sampled
	answered atomic.Bool  // a reply was observed
	mu       sync.Mutex
	local    map[netip.Addr]bool // our interfaces' addresses
	listed   time.Time
}

// on reports whether outgoing queries say "ro".
func (r *readOnly) on() bool {
	switch r.mode {
	case ReadOnlyAlways:
		return true
	case ReadOnlyBehindNAT:
		if !r.answered.Load() {
			return true
		}
		at := r.natAt.Load()
		return at != 0 && time.Since(time.Unix(0, at)) < natFor
	}
	return false
}

// sample looks at a packet from "from", if none was looked at in the last
// second: a reply's "ip" goes to observe.
func (r *readOnly) sample(from netip.AddrPort, b []byte) {
	now := time.Now().UnixNano()
	last := r.lastAt.Load()
	if now-last < int64(time.Second) || !bytes.Contains(b, []byte("1:y1:r")) || !r.lastAt.CompareAndSwap(last, now) {
		return
	}
	var m struct {
		IP krpc.NodeAddr `bencode:"ip,omitempty"`
		Y  string        `bencode:"y"`
	}
	if bencode.Unmarshal(b, &m) != nil || m.Y != "r" {
		return
	}
	r.observe(from.Addr().Unmap(), m.IP)
}

// observe takes the address a reply from "from" says it saw us at.
// A reply from loopback, or without "ip", shows no NAT.
func (r *readOnly) observe(from netip.Addr, seen krpc.NodeAddr) {
	if r.mode != ReadOnlyBehindNAT {
		return
	}
	if !from.IsLoopback() && seen.IP != nil {
		if ip, ok := netip.AddrFromSlice(seen.IP); ok && ip.IsValid() && !r.isLocal(ip.Unmap()) {
			r.natAt.Store(time.Now().UnixNano())
		}
	}
	r.answered.Store(true)
}

// isLocal reports whether ip is an address of one of our interfaces (the
// list is read again at most once a minute).
func (r *readOnly) isLocal(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.local == nil || time.Since(r.listed) > time.Minute {
		r.local = make(map[netip.Addr]bool)
		r.listed = time.Now()
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if x, ok := netip.AddrFromSlice(n.IP); ok {
						r.local[x.Unmap()] = true
					}
				}
			}
		}
	}
	return r.local[ip]
}

// markPacket returns a KRPC query or reply with "ro": 1 added at its top
// level; any other packet, or one that does not parse, is returned as it
// is.
func markPacket(b []byte) []byte {
	if !bytes.Contains(b, []byte("1:y1:q")) && !bytes.Contains(b, []byte("1:y1:r")) {
		return b
	}
	var m map[string]bencode.Bytes
	if err := bencode.Unmarshal(b, &m); err != nil || string(m["y"]) != "1:q" && string(m["y"]) != "1:r" {
		return b
	}
	if _, ok := m["ro"]; ok {
		return b
	}
	m["ro"] = bencode.Bytes("i1e")
	out, err := bencode.Marshal(m)
	if err != nil {
		return b
	}
	return out
}
