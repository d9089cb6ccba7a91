// Package peerdrop sends files from one person's device to every device
// of a contact, with no server in the data path.
//
// A Node is one device. It is opened from a home directory made by Init
// (or Join, for another device of the same account) and runs the whole
// stack:
//
//	signaling  sealed requests and answers through the BitTorrent DHT (BEP 44)
//	ice        a direct TCP path (RFC 6544), or a TURN TCP relay (RFC 6062)
//	tlslink    TLS 1.3, both sides pinned to the expected account and device
//	transfer   offer, accept or refuse, data, verified end, cancel, resume
//
// SendFile offers a file to every device in the contact's published device
// list at once. Each device accepts, refuses or cancels on its own; the
// OutgoingTransfer shows the optimistic aggregate (the most advanced device
// wins; package multidevice) and each device's own state. Incoming offers
// from contacts arrive on Offers, unless the AutoAccept policy takes them;
// requests from anyone else are dropped without bothering the application
// (the Node does not even read the mailboxes of non-contacts, and a removed
// contact's requests are dropped and counted). Every transfer is kept in a
// persisted history; a device that lost a file asks its sender for it
// again with Reask, and resumes from its partial file.
//
// # Deferred delivery
//
// A device that does not answer (offline), is busy, or whose link breaks
// mid-file is not failed: it waits (multidevice.Waiting) and is tried
// again with backoff (Config.DeliveryRetry, doubling up to 10 min) until
// Config.DeliveryWindow (a day) has passed since the offer, at once when
// its account publishes its device list (a device does as it starts) or
// it sends this device a request. The history keeps waiting devices, so
// the next Node on the home goes on (a ShortLived one leaves them to the
// next long-running one); a receiver that accepted an earlier attempt
// resumes without asking again. Every file leaves a device through one
// path (deliver in send.go): a first offer, a retry, or a re-ask.
//
// # Protocol between two Nodes
//
// The requesting side (the sender of a file, or the device re-asking for
// one) gathers ICE candidates and sends a sealed request with its ICE
// description to one device of the contact: 'F' (connect: I offer you a
// file) or 'R' + transfer ID (re-ask). The device answers with its own
// description ('A') or no ('N' + a code: busy, unknown transfer, not the
// recipient, file changed, closing). The requester is ICE-controlling and
// TLS client; the file's owner is the transfer sender either way. A re-ask
// is served only to a device of the account the transfer was sent to, and
// only while the source file is unchanged (size and modification time).
//
// A link made for a file offer negotiates ALPN peerdrop/2 when both sides
// speak it: the file protocol then runs in yamux streams, one per
// transfer, opened by the side that sends. Both keep the link for
// Config.LinkIdle (30 s) after its last stream, and the next file to that
// device, in either direction, opens a stream on it (links.go): no
// request, ICE or TLS. A re-ask of one file is a peerdrop/1 link, one
// transfer; a re-ask of many files asks for peerdrop/2.
//
// # Many files in one offer
//
// SendFiles offers files and folders as one transfer of their manifest
// (package manifest; ManifestType), with their count, bytes and top-level
// names in its metadata: one decision per device (bundle.go). Then each
// file goes in a stream of the same link as a transfer of its own, and
// small files in packs: one transfer of their bytes end to end, read from
// the sender's files and cut into the receiver's (packReader, packSink),
// whose files are renamed into place and synced before the ACK. The
// receiver checks every stream against its plan (bundle_in.go). Files the
// application reads itself (Config.Open, a Source: Android content URIs)
// go as paths do (source.go).
//
// # Events and history
//
// Config.OnEvent receives every offer, state change and progress tick, for
// incoming and outgoing transfers; an outgoing event with a zero Device is
// the aggregate. History returns the records (home/records.json, written
// atomically at each state change); transfers that were running when the
// node stopped show as failed ("interrupted") after a restart and can be
// re-asked, except the devices of outgoing ones that wait.
package peerdrop
