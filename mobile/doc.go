// Package mobile is peerdrop for Android and iOS apps, made into an AAR
// and an xcframework by gomobile bind (see mobile/Makefile). It is a facade
// over peerdrop.Node that uses only the types gomobile binds: strings,
// []byte, bool, int, int64, float64, error, pointers to exported structs and
// exported interfaces. Lists are objects with Len and Get; rich records
// (history, statistics, every state change) are JSON bytes.
//
// The app passes its own storage directories (Config.Home under its
// private files, Config.DownloadDir), creates or imports the identity once
// (CreateIdentity, ImportIdentity), then starts a Node and registers its
// listeners:
//
//	OfferListener     OnOffer(*Offer): a contact offers a file; answer with
//	                  Node.Accept(offer.ID, destPath) or Node.Refuse.
//	ProgressListener  OnTransfer(*Progress): a transfer as a whole (the
//	                  optimistic aggregate of an outgoing one);
//	                  OnDevice(*Progress): one recipient device.
//	StateListener     OnState(eventJSON): every state change, as JSON.
//	LogListener       OnLog(level, message).
//
// Callbacks arrive on a goroutine of the Node's (any thread, from the app's
// point of view), one at a time, in order; an app posts to its UI thread
// itself. A slow callback never stalls a transfer: progress updates are
// coalesced (the latest per transfer and device wins) while the app is
// busy; offers, state changes and logs are queued.
//
// No call blocks for long: SendFile returns a Transfer handle at once and
// finds the contact's devices in the background (a failure arrives as a
// failed state); Accept, Resume and NetworkChanged return at once too.
// Stop cancels running transfers (partial files are kept for Resume).
//
// SendFile and SendFiles take paths, and URIs of files the app reads
// itself (an Android content URI from a picker): SetSourceOpener gives the
// SourceOpener that opens them, so nothing is copied first.
//
// For the battery, SetForeground(false) lowers the DHT polling for
// incoming requests (Config.BackgroundPollBudget, default 0.5 gets per
// second for all contacts together) and fetches contacts' device lists
// every 10 minutes instead of every minute
// (Config.BackgroundContactRefreshSeconds); SetForeground(true) restores
// both, and refreshes the lists at once.
// NetworkChanged re-bootstraps the DHT and refreshes contacts after the
// device changed networks.
//
// Config.Proxy adds a signaling proxy ("peerdrop dht-node --proxy"): on a
// network that blocks UDP it is the only way to signal, and in the
// background it replaces the DHT node's traffic with one TLS connection
// that holds a notification stream (requests arrive at once) and a few
// requests an hour. The trade: the proxy sees the device's IP address and
// which mailbox targets it reads and listens to, and when (as DHT nodes
// storing them do, but for all of them), and the app depends on one
// server; items stay sealed and targets unlinkable to identities. See the
// README's benchmarks for requests and bytes an hour, DHT against proxy.
package mobile
