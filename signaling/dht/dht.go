package dht

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	alog "github.com/anacrolix/log"
	"golang.org/x/time/rate"
)

// Stats counts a node's work.
type Stats struct {
	Nodes, GoodNodes int
	PacketsSent      int64
	PacketsReceived  int64
	BytesSent        int64 // UDP payloads (IP and UDP headers add 28 bytes a packet over IPv4)
	BytesReceived    int64
	PutsStored       int64 // puts accepted by at least one node
	PutsFailed       int64
	PutReplies       int64 // nodes that accepted a put, summed
	Gets             int64
	QueriesDropped   int64 // hostile or over quota
	StoredItems      int
	PingedBack       int64 // querying nodes pinged back that answered
	Maintenance      int64 // table maintenance rounds done
	Subscriptions    int   // others' subscriptions held here (listen.go)
	NotifiesSent     int64 // pd_notify answered by a subscriber
	Notified         int64 // pd_notify received for this node's targets
	NotifiesDropped  int64 // notices not sent or not taken (queue full)
	Listens          int64 // pd_listen sent
	LAN              LANStats
}

// Node is a hardened anacrolix/dht node that implements signaling.Transport.
type Node struct {
	cfg   Config
	srv   *anadht.Server
	conn  *countingConn
	store *boundedStore
	local *bep44.Wrapper // store with BEP 44's rules, for this node's own puts (Serve)
	log   *slog.Logger
	once  sync.Once
	lan   *lan

	ctx     context.Context // ends on Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the node's own goroutines
	citizen *citizen
	storers *storerCache
	ro      *readOnly

	subs     *subs       // others' subscriptions here (listen.go)
	listener *listener   // this node's own (listener.go)
	notices  chan notice // pd_notify to send
	replies  chan outMsg // replies to the extension's queries
	id       krpc.ID

	quotaMu sync.Mutex
	quota   map[netip.AddrPort]map[[20]byte]time.Time
	perIP   map[netip.Addr]int

	putsOK, putsFailed, putReplies, gets, dropped atomic.Int64
	pingedBack, maintained                        atomic.Int64
	notifySent, notified, noticesDropped, listens atomic.Int64
}

// New starts a node. It does not bootstrap: call Bootstrap.
func New(cfg *Config) (*Node, error) {
	c := cfg.withDefaults()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(c.Listen))
	if err != nil {
		return nil, fmt.Errorf("dht: listen %s: %w", c.Listen, err)
	}
	ro := &readOnly{mode: c.ReadOnly}
	d := &Node{cfg: c, conn: &countingConn{UDPConn: pc, ro: ro}, ro: ro, log: c.Logger,
		store: newBoundedStore(c.MaxItems), quota: make(map[netip.AddrPort]map[[20]byte]time.Time), perIP: make(map[netip.Addr]int),
		citizen: newCitizen(),
		subs:    newSubs(), listener: newListener(), notices: make(chan notice, 1024),
		replies: make(chan outMsg, 256)}
	d.store.onPut = d.stored
	d.local = bep44.NewWrapper(d.store, c.Exp)
	d.storers = newStorerCache(c.StorerRefresh, func() int { return d.srv.NumNodes() })
	d.ctx, d.cancel = context.WithCancel(context.Background())
	boot := append([]netip.AddrPort(nil), c.Bootstrap...)
	_, _ = rand.Read(d.id[:]) // set here: the query hook runs before d.srv is set
	sc := &anadht.ServerConfig{
		NodeId:     d.id,
		Conn:       d.conn,
		NoSecurity: true,
		StartingNodes: func() ([]anadht.Addr, error) {
			addrs := make([]anadht.Addr, 0, len(boot))
			for _, a := range boot {
				addrs = append(addrs, anadht.NewAddr(net.UDPAddrFromAddrPort(a)))
			}
			if c.Global {
				g, err := anadht.GlobalBootstrapAddrs("udp")
				if err == nil {
					addrs = append(addrs, g...)
				}
			}
			return addrs, nil
		},
		Store:       d.store,
		PeerStore:   &peerStore{},
		Exp:         c.Exp,
		SendLimiter: rate.NewLimiter(rate.Limit(c.SendRate), c.SendBurst),
		DefaultWant: []krpc.Want{krpc.WantNodes},
		OnQuery:     d.onQuery,
		Logger:      alog.Default.FilterLevel(alog.Critical),
		QueryResendDelay: func() time.Duration {
			return 500 * time.Millisecond
		},
	}
	if d.isIPv6() {
		sc.DefaultWant = []krpc.Want{krpc.WantNodes, krpc.WantNodes6}
	}
	srv, err := anadht.NewServer(sc)
	if err != nil {
		pc.Close()
		return nil, err
	}
	d.srv = srv
	if c.StateFile != "" {
		if n, err := srv.AddNodesFromFile(c.StateFile); err == nil {
			d.log.Debug("routing table restored", "nodes", n)
		} else if !errors.Is(err, os.ErrNotExist) {
			d.log.Debug("routing table not restored", "err", err)
		}
	}
	if c.LAN != nil {
		if d.lan, err = startLAN(d, *c.LAN); err != nil {
			d.cancel()
			srv.Close()
			pc.Close()
			return nil, err
		}
	}
	d.wg.Add(5)
	go d.pingBackLoop()
	go d.maintainLoop()
	go d.replyLoop()
	go d.notifyLoop()
	go d.listenLoop()
	return d, nil
}

func (d *Node) isIPv6() bool { return d.cfg.Listen.Addr().Is6() && !d.cfg.Listen.Addr().Is4In6() }

// Addr is the node's UDP address.
func (d *Node) Addr() netip.AddrPort { return d.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// ID is the node's DHT ID.
func (d *Node) ID() [20]byte { return d.srv.ID() }

// Bootstrap fills the routing table from the bootstrap nodes and the
// nodes already known. With nothing to start from it returns at once
// (anacrolix/dht would leak a goroutine).
//
// The configured bootstrap nodes are pinged first: anacrolix/dht starts a
// traversal from its table alone once the table holds any node, and never
// drops a dead one, so a table restored from a state file full of nodes
// that are gone (another network, a restarted site) would otherwise shut
// the configured nodes out for good.
func (d *Node) Bootstrap(ctx context.Context) error {
	if len(d.cfg.Bootstrap) == 0 && !d.cfg.Global && d.srv.NumNodes() == 0 {
		return nil
	}
	if d.srv.NumNodes() > 0 {
		d.pingBootstrap(ctx)
	}
	return d.bootstrap(ctx)
}

// bootstrap is anacrolix's BootstrapContext (a find_node traversal towards
// this node's own ID; nodes that answer join the table) with queries that
// end with ctx. Its own queries use context.TODO: after a canceled
// bootstrap, even after Close, they went on for their resend schedule.
func (d *Node) bootstrap(ctx context.Context) error {
	return d.findNode(ctx, d.srv.ID())
}

// findNode runs a find_node traversal towards target (see traverse); the
// nodes that answer join the table.
func (d *Node) findNode(ctx context.Context, target [20]byte) error {
	want := []krpc.Want{krpc.WantNodes}
	if d.isIPv6() {
		want = append(want, krpc.WantNodes6)
	}
	var replies atomic.Int64
	_, err := d.traverse(ctx, target, 3, func(ctx context.Context, addr krpc.NodeAddr) (traversal.QueryResult, error) {
		res := d.srv.Query(ctx, anadht.NewAddr(addr.UDP()), "find_node", anadht.QueryInput{MsgArgs: krpc.MsgArgs{Target: target, Want: want}})
		if res.ToError() == nil {
			replies.Add(1)
		}
		return res.TraversalQueryResult(addr), res.ToError()
	}, func() bool { return replies.Load() > 0 })
	if err != nil {
		return fmt.Errorf("dht: find_node: %w", err)
	}
	return ctx.Err()
}

// pingBootstrap pings the configured bootstrap nodes (and, with Global,
// the public routers) at once, adding those that answer to the table.
func (d *Node) pingBootstrap(ctx context.Context) {
	addrs := append([]netip.AddrPort(nil), d.cfg.Bootstrap...)
	if d.cfg.Global {
		if g, err := anadht.GlobalBootstrapAddrs("udp"); err == nil {
			for _, a := range g {
				if ap := a.KRPC().ToNodeAddrPort().AddrPort; ap.IsValid() {
					addrs = append(addrs, ap)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.AddNode(ctx, a); err != nil {
				d.log.Debug("bootstrap node did not answer", "addr", a, "err", err)
			}
		}()
	}
	wg.Wait()
}

// AddNode pings addr and adds it to the routing table if it answers.
func (d *Node) AddNode(ctx context.Context, addr netip.AddrPort) error {
	a := anadht.NewAddr(net.UDPAddrFromAddrPort(addr))
	res := d.srv.Query(ctx, a, "ping", anadht.QueryInput{})
	if res.Err != nil {
		return res.Err
	}
	d.citizen.heardFrom(addr)
	id := res.Reply.SenderID()
	if id == nil {
		return errors.New("dht: ping reply without a node ID")
	}
	d.srv.NodeRespondedToPing(a, id.Int160())
	return nil
}

// Close saves the routing table (if configured), stops the node and closes
// its socket.
func (d *Node) Close() error {
	d.once.Do(func() {
		d.cancel()
		d.wg.Wait()
		if d.lan != nil {
			d.lan.close()
		}
		if d.cfg.StateFile != "" {
			if nodes := d.srv.Nodes(); len(nodes) > 0 {
				tmp := d.cfg.StateFile + ".tmp"
				if err := anadht.WriteNodesToFile(nodes, tmp); err == nil {
					_ = os.Rename(tmp, d.cfg.StateFile)
				}
			}
		}
		d.srv.Close()
		// anacrolix closes the socket in a goroutine; close it now, so the
		// port is free when Close returns.
		d.conn.UDPConn.Close()
	})
	return nil
}

// Stats returns the node's counters.
func (d *Node) Stats() Stats {
	st := d.srv.Stats()
	s := Stats{
		Nodes: st.Nodes, GoodNodes: st.GoodNodes,
		PacketsSent: d.conn.sent.Load(), PacketsReceived: d.conn.received.Load(), BytesSent: d.conn.sentBytes.Load(), BytesReceived: d.conn.receivedBytes.Load(),
		PutsStored: d.putsOK.Load(), PutsFailed: d.putsFailed.Load(), PutReplies: d.putReplies.Load(),
		Gets: d.gets.Load(), QueriesDropped: d.dropped.Load(), StoredItems: d.store.len(),
		PingedBack: d.pingedBack.Load(), Maintenance: d.maintained.Load(),
		Subscriptions: d.subs.count(), NotifiesSent: d.notifySent.Load(), Notified: d.notified.Load(),
		NotifiesDropped: d.noticesDropped.Load(), Listens: d.listens.Load(),
	}
	if d.lan != nil {
		s.LAN = d.lan.stats()
	}
	return s
}

// onQuery runs (under the server's lock) before anacrolix/dht handles a
// query. It fixes or refuses what the library mishandles:
//   - a query with no arguments dictionary crashes the handlers: dropped;
//   - find_node and get answer with nodes closest to InfoHash, not Target:
//     Target is copied into InfoHash;
//   - replies to IPv4 sources would list IPv4 nodes twice ("nodes" and
//     IPv4-mapped in "nodes6"): n6 is removed from their want;
//   - a source IP may store at most PerSource distinct items per Exp;
//   - pd_listen and pd_notify (listen.go) are answered here;
//
// and it queues a ping back to the querying node (see citizen.go).
func (d *Node) onQuery(m *krpc.Msg, src net.Addr) bool {
	if m.A == nil {
		d.dropped.Add(1)
		return false
	}
	switch m.Q {
	case "find_node", "get":
		m.A.InfoHash = m.A.Target
	}
	if src := addrIP(src); src.IsValid() && m.SenderID() != nil && *m.SenderID() != d.id {
		// Read-only queriers too: the ping proves their address for
		// pd_notify, and their reply, marked "ro", keeps them out of the
		// table (readonly.go).
		d.citizen.queried(src)
	}
	ip := addrIP(src).Addr()
	if ip.Is4() {
		want := m.A.Want[:0:0]
		for _, w := range m.A.Want {
			if w != krpc.WantNodes6 {
				want = append(want, w)
			}
		}
		m.A.Want = want
	}
	switch m.Q {
	case "pd_listen":
		d.onListen(m, addrIP(src))
		return false
	case "pd_notify":
		d.onNotify(m, addrIP(src))
		return false
	}
	if m.Q == "put" && !d.allowPut(addrIP(src), m.A) {
		d.dropped.Add(1)
		return false
	}
	return true
}

func (d *Node) allowPut(src netip.AddrPort, a *krpc.MsgArgs) bool {
	target := sha1.Sum(append(a.K[:], a.Salt...))
	now := time.Now()
	if _, err := d.store.Get(target); err == nil {
		// An update of an item stored here (anacrolix checks its
		// signature and seq): it costs no memory, so it is never
		// refused, whichever port or address it comes from.
		return true
	}
	d.quotaMu.Lock()
	defer d.quotaMu.Unlock()
	m := d.quota[src]
	if _, ok := m[target]; ok {
		m[target] = now.Add(d.cfg.Exp)
		return true
	}
	if len(m) >= d.cfg.PerSource || d.perIP[src.Addr()] >= 8*d.cfg.PerSource {
		d.expireQuota(now)
		m = d.quota[src]
		if len(m) >= d.cfg.PerSource || d.perIP[src.Addr()] >= 8*d.cfg.PerSource {
			return false
		}
	}
	if m == nil {
		m = make(map[[20]byte]time.Time)
		d.quota[src] = m
	}
	m[target] = now.Add(d.cfg.Exp)
	d.perIP[src.Addr()]++
	return true
}

func (d *Node) expireQuota(now time.Time) {
	for src, m := range d.quota {
		for t, exp := range m {
			if now.After(exp) {
				delete(m, t)
				if d.perIP[src.Addr()]--; d.perIP[src.Addr()] <= 0 {
					delete(d.perIP, src.Addr())
				}
			}
		}
		if len(m) == 0 {
			delete(d.quota, src)
		}
	}
}

func addrIP(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(u.IP)
		return netip.AddrPortFrom(ip.Unmap(), uint16(u.Port))
	}
	return netip.AddrPort{}
}
