package peerdrop

import (
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// Config configures a Node. Durations state their zero-value defaults.
type Config struct {
	// Home holds the key store, the transfer history and the DHT routing
	// table. Required; create it with Init.
	Home string

	// Bootstrap are DHT nodes to start from. Default: none.
	Bootstrap []netip.AddrPort
	// Global also bootstraps from the public BitTorrent DHT routers.
	// Default: off; nothing leaves the local network unless asked.
	Global bool
	// LAN discovers DHT nodes on the local network by multicast.
	// Default: off.
	LAN bool
	// DHTListen is the DHT node's UDP address. Default: 0.0.0.0:0.
	DHTListen netip.AddrPort
	// ShortLived says the Node runs for one operation (a command-line
	// send): its DHT node is then read-only (BEP 43, dht.ReadOnlyAlways),
	// so other nodes keep it out of their routing tables, where it would
	// be a dead node that every later lookup waits for once it exits.
	// Default: false; the DHT node is read-only only behind a NAT
	// (dht.ReadOnlyBehindNAT).
	ShortLived bool
	// Proxies are signaling proxies (peerdrop-proxy://HOST:PORT#PIN or
	// https://HOST:PORT; "peerdrop dht-node --proxy" runs one) that carry
	// signaling over TLS beside the DHT: puts go to both, gets race both,
	// and a device on a network that blocks UDP works through a proxy
	// alone (package signaling/proxy). Connections use ICE.DialContext.
	// Default: none.
	Proxies []string
	// Transport, if set, carries signaling instead of a DHT node of this
	// Node's own (one DHT shared by several nodes of a process, or a
	// signaling.MemoryTransport in tests). Bootstrap, Global, LAN and
	// DHTListen are then unused.
	Transport signaling.Transport

	// ICE configures connectivity: listen addresses, STUN/TURN servers,
	// modes and timeouts. The zero value listens on every interface and
	// uses no servers (a LAN with no internet needs none).
	ICE ice.Config
	// PortMapping asks the router of the network this device is on to
	// forward the listeners' TCP ports (UPnP IGD or NAT-PMP, package
	// portmap), so that peers behind any NAT can connect directly; the
	// mappings are renewed while the Node runs, found again on
	// NetworkChanged and deleted on Close. It is unused when
	// ICE.PortMapper is set. Default: off (it talks to the LAN's router).
	PortMapping bool

	// Open opens the files the application reads itself, named by URIs
	// ("content://…", any "scheme://…"), which SendFile and SendFiles then
	// take beside paths: an Android content URI goes without a copy. It is
	// called at the send (for the name, size and time, through Stat), for
	// each device's delivery, and again for deliveries resumed by a later
	// Node on this home (the history keeps the URI). Default: nil, paths
	// only.
	Open func(uri string) (Source, error)

	// DownloadDir receives accepted files. Default: Home/downloads.
	DownloadDir string
	// AutoAccept, if set, decides offers from contacts without asking the
	// application: files for which it returns true are received into
	// DownloadDir; the others go to Offers. See AcceptUpTo.
	AutoAccept func(Offer) bool
	// KeepPartials is how long the partial file of an incoming transfer
	// that failed or was canceled is kept for a resume (Reask, "peerdrop
	// resume") after its last attempt; then it is removed, as it is when
	// the transfer leaves the history (the last 1000). Negative: never by
	// age.
	// Default: 7 days.
	KeepPartials time.Duration
	// RequestTimeout bounds the wait for a device's answer to a request
	// (an offline device never answers). Default: 30s.
	RequestTimeout time.Duration
	// DeliveryWindow is how long a device that cannot be reached is tried
	// again: one that does not answer an offer (offline, or signaling
	// unreachable), is busy, or loses the link mid-transfer. It shows as
	// multidevice.Waiting meanwhile, is tried again in the background while
	// a Node runs on this home (across restarts: the history keeps it; a
	// ShortLived Node only keeps it for the next one), and resumes where it
	// stopped. It fails (ErrNoAnswer) when the window, counted from the
	// offer, has passed. Negative: no retries, a device that does not
	// answer fails at once.
	// Default: 24h.
	DeliveryWindow time.Duration
	// DeliveryRetry is the first wait before a waiting device is tried
	// again; each further wait doubles, up to 10 min. A device is tried at
	// once when its account publishes its device list (a device does as it
	// starts), when it sends this device a request, and on NetworkChanged.
	// Default: 15s.
	DeliveryRetry time.Duration
	// LinkIdle is how long a link to a device is kept open with no
	// transfer on it, for the next file to that device, in either
	// direction, to reuse (several transfers share a link, each in a
	// stream of its own, when both sides speak ALPN peerdrop/2; see
	// links.go). Negative: one link per transfer.
	// Default: 30s.
	LinkIdle time.Duration
	// ConnectTimeout bounds ICE and TLS once a device answered.
	// Default: 30s.
	ConnectTimeout time.Duration
	// MaxIncoming bounds concurrent incoming transfers; more are answered
	// busy. Default: 32.
	MaxIncoming int
	// ContactRefresh is how often contacts' device lists are fetched again.
	// Default: 1m (5s while a contact's list was not found yet).
	ContactRefresh time.Duration
	// Transfer tunes the file protocol (digest, chunk size, timeouts).
	// OnEvent is set by the Node.
	Transfer transfer.Config
	// PollBudget is the signaling poll load (DHT gets per second for all
	// contact devices together); see signaling.Config. Mobile apps lower it
	// in the background with SetPollBudget. Default: 10.
	PollBudget float64

	// OnEvent receives every state change and progress tick of every
	// transfer, from the Node's goroutines, one call at a time; it must
	// return quickly.
	OnEvent func(Event)
	// Logger receives logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns the configuration with each zero field set to the
// default its comment states (a nil cfg is the zero Config), or an error
// for a missing required field.
func (cfg *Config) withDefaults() (Config, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Home == "" {
		return c, errors.New("peerdrop: Config.Home is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DownloadDir == "" {
		c.DownloadDir = filepath.Join(c.Home, downloadsDir)
	}
	if c.KeepPartials == 0 {
		c.KeepPartials = 7 * 24 * time.Hour
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.DeliveryWindow == 0 {
		c.DeliveryWindow = 24 * time.Hour
	}
	if c.LinkIdle == 0 {
		c.LinkIdle = 30 * time.Second
	}
	if c.DeliveryRetry <= 0 {
		c.DeliveryRetry = 15 * time.Second
	}
	if c.MaxIncoming == 0 {
		c.MaxIncoming = 32
	}
	if c.ContactRefresh == 0 {
		c.ContactRefresh = time.Minute
	}
	if c.ICE.Logger == nil {
		c.ICE.Logger = c.Logger.With("layer", "ice")
	}
	return c, nil
}

// Offer is an incoming file offer.
type Offer struct {
	Transfer  transfer.ID
	From      identity.AccountID
	Device    identity.DeviceID // the sending device
	Contact   string            // the sender's name in our contacts
	Name      string            // sanitized file name; of many files, "photos/" or "photos/ and 2 more"
	Size      int64             // of many files, their total
	MediaType string
	// Files is the number of files of many in one offer (zero for one
	// file); Tops are its top-level names as the sender gave them
	// (folders end in '/'): peer text, to show, never used as paths.
	Files int
	Tops  []string
}

// AcceptUpTo returns an AutoAccept policy that accepts files of at most
// maxSize bytes whose media type starts with one of the prefixes (any type
// when none is given), as the original clients auto-accept small pictures:
// AcceptUpTo(20<<20, "image/").
func AcceptUpTo(maxSize int64, mediaPrefixes ...string) func(Offer) bool {
	return func(o Offer) bool {
		if o.Size > maxSize {
			return false
		}
		if len(mediaPrefixes) == 0 {
			return true
		}
		for _, p := range mediaPrefixes {
			if len(o.MediaType) >= len(p) && o.MediaType[:len(p)] == p {
				return true
			}
		}
		return false
	}
}
