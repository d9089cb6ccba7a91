// Package dht is peerdrop's BitTorrent DHT node: a hardened
// anacrolix/dht/v2 node that stores and finds BEP 44 mutable items for
// package signaling (it implements signaling.Transport), finds other nodes
// on the LAN by multicast, and runs standalone as "peerdrop dht-node".
//
// # DHT node
//
// Node wraps an anacrolix/dht/v2 node with the workarounds its v2.23.0
// needs: a query hook that drops argument-less queries (they crash the
// handlers), copies Target into InfoHash (find_node/get answered for the
// wrong target) and removes "n6" from IPv4 queries (IPv4 nodes listed
// twice); a bounded store and a per-source quota; its own send limiter;
// explicit expiry; puts that count the nodes that accepted (getput.Put
// reports success either way); a synchronous Close; the routing table
// saved on Close and restored at start. It bootstraps only from the
// configured addresses; the public routers only when Global is set.
//
// # Lookups
//
// Gets, puts and find_node are traversals that end 500 ms after the last
// reply once they have what they came for and skip nodes that timed out
// twice (traverse.go). The closest nodes a get or put found for a target
// are cached (storers.go): later gets ask the closest three of them
// directly and later puts ask all of them, so a mailbox polled again and
// again costs a few packets per read instead of a traversal. A target is
// traversed again when none of its storers answers, and after a time that
// starts at 5 s and doubles while traversals find the same storers, up to
// Config.StorerRefresh (30 min); with fewer than K storers (a small DHT)
// only when the routing table changed.
//
// # Read-only devices
//
// A device behind a NAT cannot be reached by nodes it has not talked to,
// so it must not be in their routing tables: referred to everyone, it
// would make every lookup wait for it. With Config.ReadOnly set to
// ReadOnlyBehindNAT (what peerdrop's devices use) a node marks its
// queries and replies "ro" (BEP 43) until replies show it is not behind
// a NAT (readonly.go); "peerdrop dht-node" is a full node.
//
// # Listen and notify
//
// Every Node serves and uses pd_listen/pd_notify, a KRPC extension
// (listen.go): a device subscribes its mailbox targets at its storers
// (Subscribe, implementing signaling.Listener), which notify it of each
// stored put with the item itself; subscriptions are bounded per source,
// per target and in all, expire a minute after the last keep-alive (sent
// every 25 s), and notices go only to sources that answered this node's
// ping, paced. Nodes without the extension (libtorrent answers unknown
// queries like find_node) are recognised and polled instead.
//
// # LAN discovery and bootstrap nodes
//
// With Config.LAN set, a node multicasts a 28-byte beacon (its node ID
// and UDP port) to 239.255.80.68:6798 (or ff02::7064:6c61:6e31 for an IPv6
// node) with TTL 1 on every up, multicast-capable, non-loopback interface
// at start and every 30 s, and pings the nodes it hears (at the packet's
// source address, once per source per 10 s, at most 20 a second), so
// devices on one LAN form a DHT with no configured address and no
// internet. A node with no bootstrap addresses is a bootstrap node for
// others: the command "peerdrop dht-node" runs one standalone.
package dht
