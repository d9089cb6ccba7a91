// Package ice gives two devices that exchanged descriptions one reliable,
// ordered byte stream (a net.Conn): a direct TCP connection when any TCP
// path exists, a TURN TCP relay otherwise. It implements ICE over TCP
// (RFC 8445 with the TCP candidates of RFC 6544) on github.com/pion/stun,
// and TURN TCP allocations (RFC 6062) with the github.com/pion/turn/v2
// client. pion/ice itself is not used: its connection is a lossy packet
// conn even over TCP, and its relays are UDP only.
//
// # Flow
//
// An Agent owns the passive TCP listeners of a device and routes incoming
// connections to sessions by the ufrag in their first check. For each
// connection attempt:
//
//  1. Agent.NewSession gathers: a passive host candidate for every address
//     of every listener plus an active one per address (port 9), a
//     server-reflexive address from STUN servers and TURN servers, the
//     public address of each listener's own port (a STUN Binding sent from
//     that port), offered as a reflexive passive and a reflexive "so"
//     candidate, a relay candidate from a TCP allocation on each TURN
//     server, and mapped candidates from a PortMapper. Session.Description is sent to the peer
//     through signaling (text form: SDP candidate lines, about 600 bytes for
//     IPv4 + IPv6 + reflexive + relay).
//  2. Session.Connect, with the peer's description: TURN permissions are
//     installed for the peer's addresses, then paths start, paced every
//     CheckInterval, best first: this side's active host candidate to each
//     passive candidate of the peer (direct), and our "so" candidates to
//     the peer's, dialed from our listener's port for twice CheckTimeout
//     (TCP simultaneous open, see simopen.go), then, after
//     RelayDelay or as soon as every direct path has failed, host to the
//     peer's relay and our relay to each passive candidate (relayed). The peer does the same, so
//     connections arrive at our listener and our relays too; each becomes a
//     path.
//  3. On every connection both sides run connectivity checks: STUN Binding
//     requests in RFC 4571 framing with USERNAME (remote:local ufrag),
//     MESSAGE-INTEGRITY (the receiver's password), FINGERPRINT, PRIORITY and
//     ICE-CONTROLLING or ICE-CONTROLLED with a tie-breaker. A role conflict
//     is resolved as RFC 8445 section 7.3.1.1 says (487 or a role switch).
//     Checks with an unknown ufrag or a bad MESSAGE-INTEGRITY are never
//     answered: the connection is closed.
//  4. The controlling side nominates the best path whose check succeeded —
//     direct before relayed, then by RFC 8445 pair priority — by a check with
//     USE-CANDIDATE, at once, or after NominationWait if a better direct path
//     is still being checked. The controlled side answers it only once its
//     own check on that connection has succeeded.
//  5. The switch: after the success response to USE-CANDIDATE the
//     controlled side sends no more STUN; the controlling side then sends a
//     Binding indication carrying PEERDROP-SELECTED (attribute 0xC0D1, with
//     USERNAME, MESSAGE-INTEGRITY and FINGERPRINT) and sends no more STUN
//     either. Frames are read exactly, never beyond, so each direction
//     carries raw application bytes right after its last STUN frame. Both
//     sides therefore agree on the one connection, and every other one is
//     closed.
//
// Data is not RFC 4571-framed after the switch: the Conn returned is the
// nominated TCP connection itself (for a relayed path, the data connection
// to the TURN server, whose bytes coturn relays), so throughput is that of
// plain TCP and Conn passes golang.org/x/net/nettest.TestConn. Keepalives
// are TCP's own; TLS on top detects a broken path.
//
// # Failure
//
// One context bounds Connect. When nothing is left to try and no path is
// alive after CheckTimeout, Connect returns a *ConnectError wrapping
// ErrNoPath that lists each path and why it failed (no route, refused,
// timeout, integrity, rejected, TURN auth failed, TURN unreachable, …) and
// each STUN/TURN server that failed while gathering.
//
// # Relays
//
// A relayed path through our allocation keeps the allocation alive (pion's
// refresh timers on the control connection) as long as the Conn is open;
// Conn.Close releases it. ModeRelayOnly advertises only relay candidates,
// without the related address, so the peer never learns this host's
// addresses. A TURN server may be reached over IPv4 or IPv6; its relayed
// address is of the family it allocates by default, IPv4 (RFC 6156: the
// pion/turn v2 client cannot send REQUESTED-ADDRESS-FAMILY, so an IPv6
// relay cannot be asked for).
//
// # Simultaneous open
//
// Listeners are opened with SO_REUSEADDR and SO_REUSEPORT, so their port
// can also dial out while it listens; that is what lets two devices behind
// NATs that filter inbound connections (port-restricted cones, a cone and
// a symmetric NAT) connect directly: both dial the other's public address
// from the port the other knows, and each SYN opens its own NAT for the
// other's. Where the OS has no SO_REUSEPORT (Windows) no "so" candidate is
// offered. Selected.Link tells the kinds of path apart: direct,
// simultaneous-open, mapped (to a reflexive passive address) or relay.
package ice
