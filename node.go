package peerdrop

import (
	"context"
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
	"github.com/peerdrop/peerdrop/portmap"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/dht"
	"github.com/peerdrop/peerdrop/signaling/proxy"
	"github.com/peerdrop/peerdrop/transfer"
)

// Files and directories in a Node's home.
const (
	identityDir  = "identity"
	recordsFile  = "records.json"
	dhtStateFile = "dht-nodes.dat"
	downloadsDir = "downloads"
	outboxDir    = "outbox" // manifests of bundles sent (bundle.go)
	inboxDir     = "inbox"  // manifests and layouts of bundles received
	lockFile     = "lock"
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
	dht      *dht.Node // nil with Config.Transport
	proxies  []*proxy.Client
	multi    *signaling.Multi // the DHT (or Config.Transport) and the proxies, when there are proxies
	tr       signaling.Transport
	sig      *signaling.Signaler
	keeper   *signaling.Keeper
	dir      *signaling.Directory
	agent    *ice.Agent
	portmap  *portmap.Mapper // with Config.PortMapping
	records  *records
	lock     io.Closer // the home's lock file
	offers   chan *IncomingTransfer
	incoming chan struct{} // semaphore of MaxIncoming

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	spawnMu  sync.Mutex // guards stopping: no goroutine is spawned once Close began
	stopping bool
	kick     chan struct{}          // refresh contacts now
	lists    signaling.Subscription // contacts' device-list targets; nil if the transport cannot listen
	ready    chan struct{}          // closed once the DHT is bootstrapped
	proxied  chan struct{}          // closed once a signaling proxy answered

	contactsMu sync.Mutex // orders key store writes with reloads
	// mu guards the seven maps below, and nothing else: the contacts (as
	// last read from the key store), the devices watched for each, the
	// incoming transfers running, the outgoing ones running or waiting,
	// the links kept for reuse, the bundles being received, and the
	// re-asks waiting for their offer. It is never held while calling
	// another layer or the application.
	mu       sync.Mutex
	contacts map[identity.AccountID]identity.Contact
	watched  map[identity.AccountID][]identity.DeviceID
	inflight map[transfer.ID]*IncomingTransfer
	outgoing map[transfer.ID]*OutgoingTransfer
	links    map[identity.DeviceID]*muxLink         // links kept for reuse (links.go)
	bundles  map[transfer.ID]*inBundle              // many files being received (bundle_in.go)
	reasked  map[transfer.ID]chan *IncomingTransfer // re-asks waiting for the offer (expect)
	eventMu  sync.Mutex                             // one OnEvent call at a time
	refused  atomic.Int64

	contactRefresh atomic.Int64 // ContactRefresh, or SetContactRefresh's (a time.Duration)
}

// Open starts a Node from its home directory. A nil cfg is the zero
// Config, whose missing Home is an error.
func Open(cfg *Config) (*Node, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
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
		kick: make(chan struct{}, 1), ready: make(chan struct{}), proxied: make(chan struct{}),
		contacts: make(map[identity.AccountID]identity.Contact), watched: make(map[identity.AccountID][]identity.DeviceID),
		inflight: make(map[transfer.ID]*IncomingTransfer), outgoing: make(map[transfer.ID]*OutgoingTransfer),
		reasked: make(map[transfer.ID]chan *IncomingTransfer),
		links:   make(map[identity.DeviceID]*muxLink), bundles: make(map[transfer.ID]*inBundle)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.contactRefresh.Store(int64(c.ContactRefresh))
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
		ro := dht.ReadOnlyBehindNAT
		if n.cfg.ShortLived {
			ro = dht.ReadOnlyAlways
		}
		dc := &dht.Config{ReadOnly: ro, Listen: n.cfg.DHTListen, Bootstrap: n.cfg.Bootstrap, Global: n.cfg.Global,
			StateFile: filepath.Join(n.cfg.Home, dhtStateFile), Logger: n.log.With("layer", "dht")}
		if n.cfg.LAN {
			dc.LAN = &dht.LANConfig{}
		}
		if n.dht, err = dht.New(dc); err != nil {
			return err
		}
		n.tr = n.dht
		n.wg.Add(1)
		go n.bootstrap()
	} else {
		close(n.ready)
	}
	if err := n.startProxies(); err != nil {
		return err
	}
	if n.cfg.PortMapping && n.cfg.ICE.PortMapper == nil {
		n.portmap = portmap.New(&portmap.Config{Logger: n.log.With("layer", "portmap")})
		n.cfg.ICE.PortMapper = n.portmap
	}
	if n.agent, err = ice.NewAgent(&n.cfg.ICE); err != nil {
		return err
	}
	if n.portmap != nil {
		n.mapListeners()
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
	if l, ok := n.tr.(signaling.Listener); ok {
		if n.lists = l.Subscribe(); n.lists != nil {
			n.wg.Add(1)
			go n.listenLists()
		}
	}
	n.wg.Add(2)
	go n.serve()
	go n.watchContacts()
	if n.cfg.KeepPartials > 0 {
		n.wg.Add(1)
		go n.expirePartials()
	}
	if !n.cfg.ShortLived {
		n.resumeDeliveries()
	}
	return nil
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
	// Undecided offers and running transfers are stopped (CancelShutdown).
	for {
		select {
		case in := <-n.offers:
			// Not refused: nobody decided. The sender may offer it
			// again to the next node (Config.DeliveryWindow).
			in.once.Do(func() {})
			in.r.Stop("the receiving node is closing")
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
	if n.lists != nil {
		n.lists.Close()
	}
	if n.agent != nil {
		n.agent.Close()
	}
	if n.portmap != nil {
		n.portmap.Close()
	}
	if n.multi != nil {
		n.multi.Close()
	}
	for _, p := range n.proxies {
		p.Close()
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
	if n.portmap != nil {
		n.portmap.Rediscover()
		n.mapListeners()
	}
	for _, p := range n.proxies {
		p.Reconnect()
	}
	n.spawn(func() {
		if n.dht != nil {
			ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
			if err := n.dht.Bootstrap(ctx); err != nil && n.ctx.Err() == nil {
				n.log.Info("DHT bootstrap after a network change failed", "err", err)
			}
			cancel()
		}
		n.refreshContacts()
		n.wakeDeliveries(identity.AccountID{}, identity.DeviceID{})
	})
}

// mapListeners asks for the IPv4 listeners' mappings now, so they are
// ready (once the router is found) before the first connection gathers.
func (n *Node) mapListeners() {
	for _, ap := range n.agent.Addrs() {
		if ap.Addr().Is4() {
			_, _ = n.portmap.MapPort(n.ctx, ap) // never waits: mapped in the background after discovery
		}
	}
}

// SetPollBudget changes the signaling poll load at once (see
// Config.PollBudget): lower in the background, higher in the foreground.
func (n *Node) SetPollBudget(budget float64) { n.sig.SetPollBudget(budget) }

// SetContactRefresh changes how often contacts' device lists are fetched
// again (Config.ContactRefresh; 0 or less: back to it): longer in the
// background, where the lists' listen notifications (or the next
// foreground) bring changes anyway. A shorter interval refreshes at once.
func (n *Node) SetContactRefresh(d time.Duration) {
	if d <= 0 {
		d = n.cfg.ContactRefresh
	}
	n.dir.SetTTL(d)
	if old := time.Duration(n.contactRefresh.Swap(int64(d))); d < old {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// Stats are counters for diagnostics.
type Stats struct {
	Signaling signaling.Stats
	DHT       dht.Stats // zero with Config.Transport
	// Proxies are the signaling proxies' traffic, in Config.Proxies order.
	Proxies []proxy.ClientStats
	// RefusedRequests are requests refused without asking the application
	// (busy, unknown or not allowed re-asks, closing).
	RefusedRequests int64
}

// Stats returns the Node's counters.
func (n *Node) Stats() Stats {
	s := Stats{Signaling: n.sig.Stats(), RefusedRequests: n.refused.Load()}
	for _, p := range n.proxies {
		s.Proxies = append(s.Proxies, p.Stats())
	}
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

// OpenStore opens the key store of a home without running a Node, for tools
// that show the identity or edit contacts (a running Node of that home picks
// contact changes up within Config.ContactRefresh).
func OpenStore(home string) (*identity.Store, error) {
	return identity.OpenStore(filepath.Join(home, identityDir))
}
