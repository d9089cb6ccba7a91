// Package portmap asks the local network's router to forward a public TCP
// port to a device's listener, with UPnP IGD (github.com/huin/goupnp) or
// NAT-PMP (github.com/jackpal/go-nat-pmp). A Mapper is an ice.PortMapper:
// each mapping becomes a server-reflexive passive candidate, which makes
// a device behind a NAT reachable as if it had a public address (a direct
// path even between two symmetric NATs, if either router maps ports).
//
// # Flow
//
//  1. New starts discovery in the background: NAT-PMP to the default
//     gateway (or Config.Gateway) asks for the external address, and a
//     UPnP SSDP search (about 2 s) looks for a WANIPConnection or
//     WANPPPConnection service; the first router that answers is kept
//     (NAT-PMP, when the router speaks it: it answers in milliseconds).
//  2. MapPort (called by ice while gathering) never waits for discovery:
//     it returns a live mapping at once, adds one in a few milliseconds
//     when a router is known, and otherwise fails with ErrNoRouter (or
//     ErrDiscovering) and remembers the port, which is then mapped as soon
//     as discovery finds a router, ready for the next connection.
//  3. Mappings are leased (Config.Lease, default 1 h) and renewed at half
//     their lease; a router that refuses leases gets a permanent mapping.
//  4. Rediscover (the network changed) forgets the router and its
//     mappings and discovers again; Close deletes every mapping and waits
//     for the Mapper's goroutines.
//
// Port mapping talks to the router of the network the device is on (SSDP
// multicast, NAT-PMP to the gateway), so peerdrop turns it on only when
// asked (the CLI's --portmap or --global, mobile's PortMapping); its tests
// run against a fake NAT-PMP server on loopback and against miniupnpd in
// the NAT lab's router namespaces, never on the host's own network.
package portmap
