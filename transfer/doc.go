// Package transfer is peerdrop's file protocol. It runs over any reliable,
// ordered byte stream (io.ReadWriteCloser): in production a tlslink.Link,
// in tests a net.Pipe.
//
// # Flow
//
//	sender                                  receiver
//	hello, HEADER (offer)      ───────►     Receive returns the Offer
//	                                        application: Accept / Refuse / Cancel
//	                           ◄───────     hello, GO(offset) | REFUSE(reason) | CANCEL
//	DATA … (from offset)       ───────►     written to a partial file (or a
//	                                        Destination.Sink, from 0), hashed
//	END(digest of whole file)  ───────►     size checked, digest verified,
//	                                        fsync, rename into place (or
//	                                        Sink.Commit)
//	                           ◄───────     ACK(verified | mismatch | failed)
//
// CANCEL(code, reason) may be sent by either side at any time, and both
// sides report a *CancelError with the reason (Remote tells whose). The
// side that sends the protocol's last frame (REFUSE, CANCEL, ACK) waits up
// to Config.LingerTimeout for the other to close first; the side that
// receives it closes at once. Half-close is never used (TURN relays reset
// on it).
//
// The sender computes the digest while sending, so the first byte leaves
// at once. When it resumes from an offset, a second reader hashes the file
// from its start concurrently. The receiver hashes its partial file before
// sending GO with an offset, then hashes incoming bytes as they arrive; the
// verified digest always covers the whole file.
//
// # Wire format (version 1)
//
// Each side first sends a 5-byte hello: "PDXF" and the version byte 0x01.
// A peer with another magic gets a *ProtocolError, with another version a
// *VersionError. Then frames:
//
//	type    uint8
//	length  uint32 big endian (≤ MaxDataFrame for DATA, ≤ MaxControlFrame otherwise)
//	payload
//
//	0x01 HEADER  id[16] size:u64 digest:u8 name:u16+bytes mediatype:u8+bytes
//	             metadata: count:u8, then key:u8+bytes value:u16+bytes (keys sorted)
//	0x02 GO      offset:u64
//	0x03 REFUSE  reason:u16+bytes
//	0x04 CANCEL  code:u8 reason:u16+bytes
//	0x05 DATA    file bytes (1..MaxDataFrame)
//	0x06 END     digest algorithm:u8 length:u8 digest bytes
//	0x07 ACK     status:u8 (0 verified, 1 mismatch, 2 failed) message:u16+bytes
//
// Strings are UTF-8. Every length is checked against its limit before any
// allocation; unknown frame types, trailing bytes and frames out of order
// are protocol errors. messages.go documents each payload beside its
// parser; testdata/golden pins example frames byte for byte.
//
// # Receiving safely
//
// Offer.Name is the peer's text: SanitizeName turns it into one file name
// that cannot leave the download directory. Data goes to a hidden partial
// file named after the transfer ID beside the destination; more data than
// announced, or END before all of it, fails the transfer; the file is
// published only after the digest matched and it was synced, and an
// existing file is never replaced unless asked (a " (n)" suffix instead).
// A canceled, failed or timed-out transfer keeps the partial file so that
// a later attempt with the same ID resumes from it; a digest mismatch
// removes it.
//
// # Observing
//
// Status gives a snapshot (state, bytes, rate, error, saved path) and
// Config.OnEvent receives every state change and throttled progress.
package transfer
