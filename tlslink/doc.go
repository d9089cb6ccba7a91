// Package tlslink secures a connected net.Conn between two devices with
// mutually authenticated TLS 1.3, pinned to identities learnt beforehand
// (from signaling): each side knows the account, and usually the device,
// it expects at the other end.
//
// Flow:
//
//  1. Both sides run a TLS 1.3 handshake (no older version, no session
//     resumption) offering the ALPN protocols of Config.Protocols ("peerdrop/1",
//     one transfer per link, by default; "peerdrop/2" runs transfers in
//     multiplexed streams), of which the server picks its first. Each presents its
//     device certificate (package identity: an X.509 certificate for the
//     device's Ed25519 key, signed by its account key); the TLS
//     CertificateVerify proves possession of the device key.
//  2. Each side verifies the other's certificate against the expected
//     account and device: not self-signed, signed by the account it names,
//     that account is the expected one, the device is the expected one,
//     within its validity period. A failure aborts the handshake with a
//     *identity.CertError whose Kind says which check failed; the other side
//     sees ErrRejectedByPeer.
//  3. In TLS 1.3 the server verifies the client last, after the client's
//     handshake has already completed. So the server confirms with one
//     byte (0x01) once it has accepted the client, and Client returns only
//     after reading it: when Client and Server return without error, both
//     sides have accepted each other.
//
// One ctx bounds the whole exchange. The returned *Link is a *tls.Conn
// (a net.Conn) plus the authenticated peer. It inherits crypto/tls's one
// departure from the net.Conn contract: after a Write times out the TLS
// stream is unusable, so deadlines on a Link are for giving up, not for
// polling.
package tlslink
