package ice

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Selected describes the path Connect chose, for diagnostics and metrics.
type Selected struct {
	Local, Remote Candidate // the pair; Remote is peer-reflexive for a connection the peer opened
	// LocalAddr and RemoteAddr are the TCP connection's own endpoints (for a
	// path through our relay: our data connection to the TURN server).
	LocalAddr, RemoteAddr netip.AddrPort
	Relayed               bool // through a TURN server (ours or the peer's)
	Controlling           bool // the role this side ended in
	Elapsed               time.Duration
	// Link is how the path goes: LinkDirect, LinkSimultaneousOpen,
	// LinkMapped or LinkRelay.
	Link string
}

// Kinds of path (Selected.Link).
const (
	LinkDirect           = "direct"            // to a host address: a LAN, an open host
	LinkSimultaneousOpen = "simultaneous-open" // between two NATs, TCP simultaneous open
	LinkMapped           = "mapped"            // to a reflexive passive address: a port mapping or a NAT open to all
	LinkRelay            = "relay"             // through a TURN server
)

// Kind is Link.
func (s Selected) Kind() string { return s.Link }

// Conn is the selected path: the nominated TCP connection itself, carrying
// raw data (no framing) from the switch on. Close also releases our TURN
// allocation when the path goes through it.
type Conn struct {
	net.Conn
	sel   Selected
	relay *relay
	once  sync.Once
	err   error
}

// Selected returns what was chosen.
func (c *Conn) Selected() Selected { return c.sel }

// Close closes the connection and, for a path through our relay, the
// allocation. It is idempotent.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.err = c.Conn.Close()
		if c.relay != nil {
			c.relay.close()
		}
	})
	return c.err
}
