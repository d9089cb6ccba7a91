// Package natlab builds small internets in Linux network namespaces for
// end-to-end tests of peerdrop across real NATs: a "public" segment
// (203.0.113.0/24, a documentation range) with a server host running
// coturn (STUN and TURN over UDP and TCP, RFC 6062 TCP relays) and DHT
// bootstrap nodes (peerdrop dht-node), and sites: a router with a kernel
// NAT of a chosen type (nftables) in front of hosts on 10.N.0.0/24, or open
// hosts with public addresses. Access links can be shaped (delay, jitter,
// loss, rate) by a userspace shaper, since these kernels have no netem.
//
// Hosts run the real peerdrop command-line tool with ip netns exec. Every
// process started is killed by PID and every namespace deleted when the
// test ends; netns.DeleteStale removes what a crashed run left (its
// namespaces are named after its PID, which no longer exists).
//
// NAT types (router WAN side):
//
//	Open            no router: the host has a public address
//	FullCone        masquerade, and inbound packets to a mapped port go to
//	                whoever created the mapping (an nftables map learned
//	                from outbound packets): endpoint-independent filtering
//	PortRestricted  masquerade: endpoint-independent mapping, address-and-
//	                port-dependent filtering
//	Symmetric       masquerade fully-random: a new port per destination
//	UDPBlocked      port-restricted, and every forwarded UDP packet dropped
//
// Routers drop unsolicited traffic addressed to themselves.
package natlab
