// Package signaling carries connection requests and answers between two
// devices through the BitTorrent DHT (BEP 44 mutable items), and publishes
// each account's list of devices.
//
// # Sealed messages
//
// A message (request or answer, with an ICE description as payload) is
// signed by the sender device and carries its account-signed certificate,
// a random ID, the time and the recipient device ID; it is then encrypted
// to the recipient device's X25519 sealing key with a fresh ephemeral key
// (HKDF-SHA256, XChaCha20-Poly1305). The payload is DEFLATE-compressed with
// a preset dictionary when that helps: a 580-byte ICE description for IPv4
// + IPv6 + reflexive + relay seals to 784 bytes of the 996 a DHT value
// allows; 409 bytes of incompressible payload fit. The format is in
// seal.go. A recipient drops, and counts by Reason, anything oversized,
// undecryptable or malformed (garbled), badly signed (forged), with a
// certificate not signed by the account it names (bad chain), addressed to
// another device, outside the time window (2 min), replayed, from a device
// other than the mailbox's, or from an account the policy refuses.
//
// # Mailboxes
//
// Messages from device F to device T live under an Ed25519 key derived
// from the X25519 secret of F and T (see mailbox.go): only they can find or
// write it, and a DHT node sees random targets. Requests use four slots,
// filled from the lowest and compacted, so a request is never lost behind
// an unread one; answers use four answer slots the same way, each freed
// once the requester no longer lists its request. A device pair thus uses
// at most eight items however many messages it exchanges (a DHT node's
// per-source quota of new items is never reached by normal use: 300
// exchanges through one node with a quota of 16 left 8 items).
// Writers republish every 5 s until answered or expired (60 s).
//
// # Polling and load
//
// A Signaler polls the first request slot of every watched device (the
// devices of contacts), and the next slot only while the previous one held
// a request. The idle interval spreads a budget of 10 gets per second over
// the watched devices, between 100 ms and 30 s (1 device: every 100 ms; 10:
// every second; 100: every 10 s), and a device that just sent a request is
// polled every 100 ms for 30 s. A waiting request polls its answer every
// 50 ms; all waiting requests together poll at most 20 times a second
// (AnswerBudget), so 20 requests in flight poll every second each. On an
// 8-node loopback DHT a get traversal costs about 16 packets, a get from
// the storers that package dht caches 3, and a request/answer exchange
// about 170 packets including the reader's polling meanwhile; request
// delivery p50 is ~80 ms (p99 ≤ 0.6 s) and answer p50 ~30 ms
// (BenchmarkSignaling). Fewer gets buy proportionally slower
// delivery: the expected delay is half the poll interval.
//
// Over a Transport that is a Listener (package dht, at DHT nodes that run
// peerdrop's listen extension), the Signaler subscribes the first request
// slot ("q0") of every watched peer; a peer whose subscription is live is
// polled only every ListenedPoll (5 min, a safety net for a lost
// notification) and at once when a put to its slot is notified, so an
// idle device costs a keep-alive per storing node every 25 s and a
// request arrives in one notification (request delivery p50 ~20 ms on the
// 8-node loopback DHT). Where no subscription holds, peers are polled as
// above.
//
// # Device lists
//
// An account publishes its devices (ID, sealing key, certificate expiry,
// name; at most 8) as an item signed by the account key itself; Directory
// caches lookups for a TTL. Certificates are not repeated in the list: the
// account signature already binds the keys, and a device presents its
// certificate in every sealed message and TLS handshake. A Keeper on every
// device of the account merges the published list with the one it knows,
// keeps itself in it, and republishes every 30 min (DHT nodes forget items
// after 2 h). The list also carries the first 8 bytes of the IDs of the
// last 8 revoked devices, so honest devices do not add them back and a
// revoked device stops publishing itself (ErrRevoked).
//
// # Transports
//
// Items travel through a Transport: package signaling/dht is the real one
// (a hardened BitTorrent DHT node with LAN discovery), MemoryTransport an
// in-process one for tests.
package signaling
