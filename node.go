package peerdrop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// Files and directories in a Node's home.
const (
	identityDir  = "identity"
	recordsFile  = "records.json"
	dhtStateFile = "dht-nodes.dat"
	downloadsDir = "downloads"
	lockFile     = "lock"
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
	// Transport, if set, carries signaling instead of a DHT node of this
	// Node's own (one DHT shared by several nodes of a process, or a
	// signaling.MemoryTransport in tests). Bootstrap, Global, LAN and
	// DHTListen are then unused.
	Transport signaling.Transport

	// ICE configures connectivity: listen addresses, STUN/TURN servers,
	// modes and timeouts. The zero value listens on every interface and
	// uses no servers (a LAN with no internet needs none).
	ICE ice.Config

	// DownloadDir receives accepted files. Default: Home/downloads.
	DownloadDir string
	// AutoAccept, if set, decides offers from contacts without asking the
	// application: files for which it returns true are received into
	// DownloadDir; the others go to Offers. See AcceptUpTo.
	AutoAccept func(Offer) bool
	// RequestTimeout bounds the wait for a device's answer to a request
	// (an offline device never answers). Default: 30s.
	RequestTimeout time.Duration
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

// Offer is an incoming file offer.
type Offer struct {
	Transfer  transfer.ID
	From      identity.AccountID
	Device    identity.DeviceID // the sending device
	Contact   string            // the sender's name in our contacts
	Name      string            // sanitized file name
	Size      int64
	MediaType string
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

// Errors.
var (
	// ErrNotInitialized: the home has no identity; run Init first.
	ErrNotInitialized = identity.ErrNotInitialized
	// ErrClosed: the Node was closed.
	ErrClosed = errors.New("peerdrop: node closed")
	// ErrUnknownTransfer: no such transfer in the history.
	ErrUnknownTransfer = errors.New("peerdrop: unknown transfer")
	// ErrHomeInUse: another Node (of this or another process) runs on the
	// home directory; one home is one device, run by one Node at a time.
	ErrHomeInUse = errors.New("peerdrop: home directory in use by another running node")
)

// Init creates a new account and its first device in home.
func Init(home, deviceName string) (identity.AccountID, identity.DeviceID, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	st, err := identity.OpenStore(filepath.Join(home, identityDir))
	if err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	acct, dev, err := st.Init(deviceName)
	if err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	return acct.ID(), dev.ID(), nil
}

// Join makes home a new device of the account in archive (made by
// ExportAccount on a device of the account), with the account's contacts.
// Once opened, the new device adds itself to the account's device list.
func Join(home string, archive, password []byte, deviceName string) (identity.AccountID, identity.DeviceID, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	st, err := identity.OpenStore(filepath.Join(home, identityDir))
	if err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	acct, dev, err := st.Join(archive, password, deviceName)
	if err != nil {
		return identity.AccountID{}, identity.DeviceID{}, err
	}
	return acct.ID(), dev.ID(), nil
}

// Node is one device running peerdrop: it publishes its device list,
// answers requests from contacts' devices, receives offered files and
// sends files to every device of a contact. Open it, Close it.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    *identity.Store
	acct     *identity.Account
	dev      *identity.Device
	dht      *signaling.DHT // nil with Config.Transport
	tr       signaling.Transport
	sig      *signaling.Signaler
	keeper   *signaling.Keeper
	dir      *signaling.Directory
	agent    *ice.Agent
	records  *records
	lock     io.Closer // the home's lock file
	offers   chan *IncomingTransfer
	incoming chan struct{} // semaphore of MaxIncoming

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	spawnMu  sync.Mutex
	stopping bool
	kick     chan struct{} // refresh contacts now
	ready    chan struct{} // closed once the DHT is bootstrapped

	contactsMu sync.Mutex // orders key store writes with reloads
	mu         sync.Mutex
	contacts   map[identity.AccountID]identity.Contact
	watched    map[identity.AccountID][]identity.DeviceID
	inflight   map[transfer.ID]*IncomingTransfer
	eventMu    sync.Mutex
	refused    atomic.Int64
}

// Open starts a Node from its home directory.
func Open(cfg *Config) (*Node, error) {
	c := *cfg
	if c.Home == "" {
		return nil, errors.New("peerdrop: Config.Home is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DownloadDir == "" {
		c.DownloadDir = filepath.Join(c.Home, downloadsDir)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
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
	st, err := identity.OpenStore(filepath.Join(c.Home, identityDir))
	if err != nil {
		return nil, err
	}
	acct, dev, err := st.Load()
	if err != nil {
		return nil, err
	}
	lock, err := lockHome(c.Home)
	if err != nil {
		return nil, err
	}
	n, err := open(c, st, acct, dev)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	n.lock = lock
	return n, nil
}

func open(c Config, st *identity.Store, acct *identity.Account, dev *identity.Device) (*Node, error) {
	if err := os.MkdirAll(c.DownloadDir, 0o700); err != nil {
		return nil, err
	}
	recs, err := openRecords(filepath.Join(c.Home, recordsFile))
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: c, log: c.Logger, store: st, acct: acct, dev: dev, records: recs,
		offers: make(chan *IncomingTransfer, 64), incoming: make(chan struct{}, c.MaxIncoming),
		kick: make(chan struct{}, 1), ready: make(chan struct{}),
		contacts: make(map[identity.AccountID]identity.Contact), watched: make(map[identity.AccountID][]identity.DeviceID),
		inflight: make(map[transfer.ID]*IncomingTransfer)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.start(); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	cs, err := n.store.Contacts()
	if err != nil {
		return err
	}
	for _, c := range cs {
		n.contacts[c.ID] = c
	}
	n.tr = n.cfg.Transport
	if n.tr == nil {
		dc := &signaling.DHTConfig{Listen: n.cfg.DHTListen, Bootstrap: n.cfg.Bootstrap, Global: n.cfg.Global,
			StateFile: filepath.Join(n.cfg.Home, dhtStateFile), Logger: n.log.With("layer", "dht")}
		if n.cfg.LAN {
			dc.LAN = &signaling.LANConfig{}
		}
		if n.dht, err = signaling.NewDHT(dc); err != nil {
			return err
		}
		n.tr = n.dht
		n.wg.Add(1)
		go n.bootstrap()
	} else {
		close(n.ready)
	}
	if n.agent, err = ice.NewAgent(&n.cfg.ICE); err != nil {
		return err
	}
	n.dir = &signaling.Directory{Transport: n.tr, TTL: n.cfg.ContactRefresh}
	if n.sig, err = signaling.New(&signaling.Config{Device: n.dev, Transport: n.tr, Allow: n.isContact,
		PollBudget: n.cfg.PollBudget, RequestTTL: n.cfg.RequestTimeout, Logger: n.log.With("layer", "signaling")}); err != nil {
		return err
	}
	if n.keeper, err = signaling.StartKeeper(&signaling.KeeperConfig{Transport: n.tr, Account: n.acct, Device: n.dev,
		Name: n.dev.Name, Start: n.ready, Logger: n.log.With("layer", "devices")}); err != nil {
		return err
	}
	n.wg.Add(2)
	go n.serve()
	go n.watchContacts()
	return nil
}

// bootstrap joins the DHT and closes n.ready when the routing table is
// worth using: when the bootstrap traversal ended, or after 10s of trying
// (unreachable bootstrap nodes), or, with LAN discovery and nothing else,
// once a first node was found (at most 3s). Until then the device list is
// not published and lookups wait, rather than fail on an empty table.
func (n *Node) bootstrap() {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	booted := make(chan struct{})
	go func() {
		defer close(booted)
		if err := n.dht.Bootstrap(ctx); err != nil && n.ctx.Err() == nil {
			n.log.Warn("DHT bootstrap failed", "err", err)
		}
	}()
	defer func() { <-booted }()
	bound := time.NewTimer(10 * time.Second)
	defer bound.Stop()
	select {
	case <-booted:
	case <-bound.C:
	case <-n.ctx.Done():
	}
	if n.cfg.LAN && len(n.cfg.Bootstrap) == 0 && !n.cfg.Global {
		for end := time.Now().Add(3 * time.Second); n.dht.Stats().Nodes == 0 && time.Now().Before(end) && n.ctx.Err() == nil; {
			time.Sleep(50 * time.Millisecond)
		}
	}
	close(n.ready)
}

// waitReady waits until the DHT is bootstrapped (see bootstrap).
func (n *Node) waitReady(ctx context.Context) error {
	select {
	case <-n.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close cancels every running transfer (keeping partial files), stops
// answering, and closes every socket and goroutine of the Node.
func (n *Node) Close() error {
	n.once.Do(func() {
		n.closed.Store(true)
		n.stop()
	})
	return nil
}

// spawn runs f in a goroutine that Close waits for; once Close started, f
// does not run and spawn returns false.
func (n *Node) spawn(f func()) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.stopping {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func (n *Node) stop() {
	n.spawnMu.Lock()
	n.stopping = true
	n.spawnMu.Unlock()
	n.cancel()
	// Undecided offers are refused; running transfers see n.ctx end.
	for {
		select {
		case in := <-n.offers:
			in.Refuse("the receiving node is closing")
			continue
		default:
		}
		break
	}
	if n.sig != nil {
		n.sig.Close()
	}
	n.wg.Wait()
	if n.keeper != nil {
		n.keeper.Close()
	}
	if n.agent != nil {
		n.agent.Close()
	}
	if n.dht != nil {
		n.dht.Close()
	}
	if n.lock != nil {
		n.lock.Close()
	}
}

// Account is this node's account ID.
func (n *Node) Account() identity.AccountID { return n.acct.ID() }

// Device is this node's device ID.
func (n *Node) Device() identity.DeviceID { return n.dev.ID() }

// DeviceName is this device's name.
func (n *Node) DeviceName() string { return n.dev.Name }

// DHTAddr is the UDP address of the Node's DHT node (invalid with
// Config.Transport), for other nodes to bootstrap from.
func (n *Node) DHTAddr() netip.AddrPort {
	if n.dht == nil {
		return netip.AddrPort{}
	}
	return n.dht.Addr()
}

// Offers delivers incoming offers that the AutoAccept policy did not
// accept. Each must be accepted or refused; an offer nobody decides fails
// after transfer.Config.DecisionTimeout (10 min).
func (n *Node) Offers() <-chan *IncomingTransfer { return n.offers }

// NetworkChanged tells the Node that the device's network changed (Wi-Fi
// to cellular, a new LAN): it bootstraps the DHT again from the configured
// nodes and fetches contacts' device lists now. New connections gather
// the current addresses by themselves; running transfers on a path that
// vanished fail and can be re-asked. It returns at once.
func (n *Node) NetworkChanged() {
	n.spawn(func() {
		if n.dht != nil {
			ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
			if err := n.dht.Bootstrap(ctx); err != nil && n.ctx.Err() == nil {
				n.log.Info("DHT bootstrap after a network change failed", "err", err)
			}
			cancel()
		}
		n.refreshContacts()
	})
}

// SetPollBudget changes the signaling poll load at once (see
// Config.PollBudget): lower in the background, higher in the foreground.
func (n *Node) SetPollBudget(budget float64) { n.sig.SetPollBudget(budget) }

// Stats are counters for diagnostics.
type Stats struct {
	Signaling signaling.Stats
	DHT       signaling.DHTStats // zero with Config.Transport
	// RefusedRequests are requests refused without asking the application
	// (busy, unknown or not allowed re-asks, closing).
	RefusedRequests int64
}

// Stats returns the Node's counters.
func (n *Node) Stats() Stats {
	s := Stats{Signaling: n.sig.Stats(), RefusedRequests: n.refused.Load()}
	if n.dht != nil {
		s.DHT = n.dht.Stats()
	}
	return s
}

// History returns the transfer records, newest first.
func (n *Node) History() []Record { return n.records.list() }

// ExportAccount returns the account and its contacts in an archive
// encrypted with password, for Join on another device.
func (n *Node) ExportAccount(password []byte) ([]byte, error) { return n.store.Export(password, nil) }

// Devices returns this account's device list as last published or seen.
func (n *Node) Devices() []signaling.DeviceEntry {
	if l := n.keeper.List(); l != nil {
		return l.Devices
	}
	return nil
}

// PublishDevices publishes this account's device list now (after a Join,
// say) and returns it.
func (n *Node) PublishDevices(ctx context.Context) ([]signaling.DeviceEntry, error) {
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	l, err := n.keeper.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	return l.Devices, nil
}

// RevokeDevice removes a device from this account's list (a lost phone).
func (n *Node) RevokeDevice(ctx context.Context, dev identity.DeviceID) error {
	if err := n.waitReady(ctx); err != nil {
		return err
	}
	_, err := n.keeper.Revoke(ctx, dev)
	return err
}

// ContactDevices looks up a contact's devices (fresh, not cached).
func (n *Node) ContactDevices(ctx context.Context, contact identity.AccountID) ([]signaling.DeviceEntry, error) {
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	n.dir.Forget(contact)
	l, err := n.dir.Lookup(ctx, contact)
	if err != nil {
		return nil, err
	}
	return l.Devices, nil
}

// Contacts returns the contacts.
func (n *Node) Contacts() []identity.Contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]identity.Contact, 0, len(n.contacts))
	for _, c := range n.contacts {
		out = append(out, c)
	}
	return out
}

// AddContact trusts an account: its devices may send files to this node,
// and this node may send to them.
func (n *Node) AddContact(id identity.AccountID, name string) (identity.Contact, error) {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	c, err := n.store.AddContact(id, name)
	if err != nil {
		return c, err
	}
	n.mu.Lock()
	n.contacts[id] = c
	n.mu.Unlock()
	n.refreshContacts()
	return c, nil
}

// RemoveContact stops trusting an account: its requests are dropped from
// now on.
func (n *Node) RemoveContact(id identity.AccountID) error {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	if err := n.store.RemoveContact(id); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.contacts, id)
	n.mu.Unlock()
	n.dir.Forget(id)
	return nil
}

func (n *Node) isContact(id identity.AccountID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.contacts[id]
	return ok
}

func (n *Node) contact(id identity.AccountID) (identity.Contact, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.contacts[id]
	return c, ok
}

// refreshContacts makes the watcher fetch contacts' device lists now.
func (n *Node) refreshContacts() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// RefreshContacts fetches every contact's device list now and watches
// their devices' mailboxes; it returns the first error.
func (n *Node) RefreshContacts(ctx context.Context) error {
	return n.syncWatches(ctx, true)
}

// watchContacts keeps the signaler watching every device of every contact.
// Contacts added or removed by another process (a command-line tool
// editing the key store while this Node runs) are picked up at each round.
// A contact whose list is not found yet (it never ran, or its device
// started a moment ago) is looked up again after 0.25s, 0.5s, 1s, 2s, 4s,
// then every 5s: a first contact is noticed quickly.
func (n *Node) watchContacts() {
	defer n.wg.Done()
	if n.waitReady(n.ctx) != nil {
		return
	}
	const firstRetry = 250 * time.Millisecond
	retry := firstRetry
	for {
		n.reloadContacts()
		ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
		err := n.syncWatches(ctx, false)
		cancel()
		wait := n.cfg.ContactRefresh
		if err != nil {
			wait = min(wait, retry)
			retry = min(2*retry, 5*time.Second)
		} else {
			retry = firstRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-n.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// reloadContacts reads the contacts from the key store again.
func (n *Node) reloadContacts() {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	cs, err := n.store.Contacts()
	if err != nil {
		n.log.Warn("cannot read contacts", "err", err)
		return
	}
	m := make(map[identity.AccountID]identity.Contact, len(cs))
	for _, c := range cs {
		m[c.ID] = c
	}
	n.mu.Lock()
	n.contacts = m
	n.mu.Unlock()
}

// syncWatches looks up each contact's devices and watches them; devices
// that left a list, and accounts no longer contacts, are unwatched.
func (n *Node) syncWatches(ctx context.Context, fresh bool) error {
	var first error
	contacts := n.Contacts()
	seen := make(map[identity.AccountID]bool)
	for _, c := range contacts {
		seen[c.ID] = true
		if fresh {
			n.dir.Forget(c.ID)
		}
		l, err := n.dir.Lookup(ctx, c.ID)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%s: %w", c.Name, err)
			}
			continue
		}
		var devs []identity.DeviceID
		for _, d := range l.Devices {
			if err := n.sig.Watch(d.Peer(c.ID)); err == nil {
				devs = append(devs, d.Device)
			}
		}
		n.mu.Lock()
		old := n.watched[c.ID]
		n.watched[c.ID] = devs
		n.mu.Unlock()
		for _, o := range old {
			if _, still := l.Entry(o); !still {
				n.sig.Unwatch(o)
			}
		}
	}
	n.mu.Lock()
	var gone []identity.DeviceID
	for a, devs := range n.watched {
		if !seen[a] {
			gone = append(gone, devs...)
			delete(n.watched, a)
		}
	}
	n.mu.Unlock()
	for _, d := range gone {
		n.sig.Unwatch(d)
	}
	return first
}

// OpenStore opens the key store of a home without running a Node, for tools
// that show the identity or edit contacts (a running Node of that home picks
// contact changes up within Config.ContactRefresh).
func OpenStore(home string) (*identity.Store, error) {
	return identity.OpenStore(filepath.Join(home, identityDir))
}
