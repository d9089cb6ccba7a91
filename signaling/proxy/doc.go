// Package proxy carries signaling over TLS through a peerdrop node, for
// devices on networks that let only TCP out (many offices, hotels,
// campuses, some mobile carriers), where the DHT, which is UDP, reaches no
// one. It is what Jami's DHT proxy, iroh's relays and tailscale's DERP are
// to those projects, for BEP 44 mutable items alone.
//
// A Server (run by "peerdrop dht-node --proxy ADDR") serves the operations
// signaling needs, get and put of BEP 44 mutable items and a stream of
// notifications, over HTTPS (HTTP/2 or HTTP/1.1), and does them on its own
// DHT node (a signaling.Transport, normally a *dht.Node with Serve set). A
// Client is a signaling.Transport and signaling.Listener over a Server;
// the Node uses it beside its UDP DHT node, through signaling.Multi.
//
// # Protocol (version 1)
//
//	GET  /v1/                       200 {"proxy":"peerdrop","version":1}
//	POST /v1/put     body: item     204 stored; 400 bad item; 429 over a rate;
//	                                502 no node took it
//	GET  /v1/get?k=HEX&salt=HEX     200 item; 404 not found; 400; 429
//	POST /v1/listen  body: {"targets":[HEX,...]}   (at most MaxTargets)
//	                                200, then one JSON object per line:
//	                                {"listening":[HEX,...]} first and on change
//	                                {"item":item} a put at one of the targets
//	                                {} every KeepAlive
//
// An item is {"k":B64,"salt":B64,"seq":N,"v":B64,"sig":B64} (standard
// base64 of the BEP 44 fields: 32-byte key, salt of at most 64 bytes, value,
// 64-byte signature). Request bodies are at most 4 KiB. "listening" names
// the targets whose puts the Server will notify (its DHT node stores them
// or holds a subscription where they are stored): the others must still be
// polled with get. A listen request's set is replaced by opening a new one.
//
// # Security
//
// The Server checks every item's sizes and signature before storing or
// forwarding it, forwards nothing else (it is no relay for arbitrary DHT
// traffic), and bounds everything a client can make it hold: connections
// (in all and per IP), listen streams (in all and per IP), targets per
// stream and in all, request rates per client IP and put rates per
// target, request sizes and the time a request may take to arrive. A
// stream whose client does not read is closed.
//
// TLS authenticates the Server: an https:// address is checked against
// the system's roots (a certificate the operator got from a CA), a
// peerdrop-proxy://HOST:PORT#PIN address against PIN, the SHA-256 of the
// public key of the Server's self-signed certificate (SelfSigned creates
// and keeps it). A Client never talks to an unauthenticated Server.
//
// What a proxy learns: the client's IP address and which targets it reads,
// writes and listens to, and when. Targets are mailbox locations that
// only the two devices of a pair can link to either of them (see package
// signaling), and items are sealed, so it learns neither who talks to whom
// nor what they say; but two devices that use the same proxy at the same
// moments can be linked by timing. The UDP DHT shows the same to the nodes
// that store a mailbox; a proxy sees it for all of its clients' mailboxes.
package proxy
