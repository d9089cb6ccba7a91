package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/netopt"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling/proxy"
	"github.com/peerdrop/peerdrop/transfer"
)

// Errors.
var (
	// ErrNotStarted: the Node is not running (Start it first).
	ErrNotStarted = errors.New("peerdrop: node not started")
	// ErrUnknownOffer: no offer with that ID waits for an answer.
	ErrUnknownOffer = errors.New("peerdrop: unknown offer")
)

// IsInitialized reports whether home holds an identity.
func IsInitialized(home string) bool {
	st, err := peerdrop.OpenStore(home)
	return err == nil && st.Initialized()
}

// CreateIdentity creates a new account and this device in home; it returns
// the account ID.
func CreateIdentity(home, deviceName string) (string, error) {
	acct, _, err := peerdrop.Init(home, identity.CleanName(deviceName, 64))
	if err != nil {
		return "", err
	}
	return acct.String(), nil
}

// ImportIdentity makes home a new device of the account in archive (from
// Node.ExportIdentity on another device); it returns the account ID. Once
// started, the device adds itself to the account's device list.
func ImportIdentity(home string, archive []byte, password, deviceName string) (string, error) {
	acct, _, err := peerdrop.Join(home, archive, []byte(password), identity.CleanName(deviceName, 64))
	if err != nil {
		return "", err
	}
	return acct.String(), nil
}

// Node is this device. Create it with NewNode, register listeners, Start.
// Its methods are safe to call from any thread.
type Node struct {
	cfg  Config
	disp *dispatcher

	mu     sync.Mutex
	node   *peerdrop.Node
	offers map[string]*peerdrop.IncomingTransfer
	names  map[identity.AccountID]string
	opener SourceOpener
	fg     bool
	wg     sync.WaitGroup // background work of SendFile and Resume
	ctx    context.Context
	cancel context.CancelFunc
}

// NewNode returns a stopped Node with a copy of cfg (nil: the zero Config,
// which Start refuses: Home is required).
func NewNode(cfg *Config) *Node {
	return &Node{cfg: cfg.withDefaults(), fg: true, disp: newDispatcher(), offers: make(map[string]*peerdrop.IncomingTransfer)}
}

// SetOfferListener sets (or, with nil, clears) the offer listener.
func (n *Node) SetOfferListener(listener OfferListener) {
	n.disp.mu.Lock()
	n.disp.offer = listener
	n.disp.mu.Unlock()
}

// SetProgressListener sets (or clears) the progress listener.
func (n *Node) SetProgressListener(listener ProgressListener) {
	n.disp.mu.Lock()
	n.disp.progress = listener
	n.disp.mu.Unlock()
}

// SetStateListener sets (or clears) the state listener.
func (n *Node) SetStateListener(listener StateListener) {
	n.disp.mu.Lock()
	n.disp.state = listener
	n.disp.mu.Unlock()
}

// SetLogListener sets (or clears) the log listener.
func (n *Node) SetLogListener(listener LogListener) {
	n.disp.mu.Lock()
	n.disp.logs = listener
	n.disp.mu.Unlock()
}

// Start opens the Node: it joins the DHT (in the background), publishes
// this device and starts answering contacts. It fails if the home has no
// identity or another Node runs on it.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node != nil {
		return nil
	}
	pc, err := n.nodeConfig()
	if err != nil {
		return err
	}
	st, err := peerdrop.OpenStore(n.cfg.Home)
	if err != nil {
		return err
	}
	n.names = map[identity.AccountID]string{}
	if cs, err := st.Contacts(); err == nil {
		for _, c := range cs {
			n.names[c.ID] = c.Name
		}
	}
	pc.OnEvent = func(e peerdrop.Event) { n.disp.event(e, n.nameOf) }
	pc.Open = n.open
	node, err := peerdrop.Open(pc)
	if err != nil {
		return err
	}
	n.node = node
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if !n.fg {
		n.applyForeground(node, false)
	}
	n.wg.Add(1)
	go n.serveOffers(node)
	return nil
}

func (n *Node) nodeConfig() (*peerdrop.Config, error) {
	c := n.cfg
	if c.Home == "" {
		return nil, errors.New("peerdrop: Config.Home is required")
	}
	pc := &peerdrop.Config{Home: c.Home, DownloadDir: c.DownloadDir, LAN: c.LAN, Global: c.Global, PortMapping: c.PortMapping,
		PollBudget: c.ForegroundPollBudget, DeliveryWindow: time.Duration(c.DeliveryWindowSeconds) * time.Second,
		Logger: slog.New(&logHandler{d: n.disp, level: slog.Level(c.LogLevel)})}
	var err error
	if pc.Bootstrap, err = netopt.Bootstrap(context.Background(), c.Bootstrap); err != nil {
		return nil, err
	}
	if c.Listen != "" {
		ap, err := netopt.Listen(c.Listen)
		if err != nil {
			return nil, err
		}
		pc.DHTListen, pc.ICE.ListenAddrs = ap, []netip.AddrPort{ap}
	}
	if pc.ICE.Servers, err = netopt.Servers(c.StunURL, c.TurnURL, c.TurnUser, c.TurnPass); err != nil {
		return nil, err
	}
	for _, p := range netopt.List(c.Proxy) {
		if _, err := proxy.ParseAddr(p); err != nil {
			return nil, err
		}
		pc.Proxies = append(pc.Proxies, p)
	}
	if c.AutoAcceptMaxBytes > 0 {
		pc.AutoAccept = peerdrop.AcceptUpTo(c.AutoAcceptMaxBytes, netopt.List(c.AutoAcceptTypes)...)
	}
	return pc, nil
}

// serveOffers hands offers to the OfferListener (an offer with no
// listener is refused: nobody could answer it).
func (n *Node) serveOffers(node *peerdrop.Node) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case in := <-node.Offers():
			o := in.Offer()
			id := o.Transfer.String()
			if ol, _, _, _ := n.disp.listeners(); ol == nil {
				in.Refuse("this device cannot take files now")
				continue
			}
			n.mu.Lock()
			n.offers[id] = in
			n.mu.Unlock()
			offer := &Offer{ID: id, From: o.From.String(), FromName: o.Contact, Device: o.Device.String(), Name: o.Name, Size: o.Size, MediaType: o.MediaType,
				Files: o.Files, Tops: strings.Join(o.Tops, "\n")}
			n.disp.post(func() {
				if ol, _, _, _ := n.disp.listeners(); ol != nil {
					ol.OnOffer(offer)
				}
			})
			n.wg.Add(1)
			go func() { // forget the offer once it ended
				defer n.wg.Done()
				select {
				case <-in.Done():
				case <-n.ctx.Done():
				}
				n.mu.Lock()
				delete(n.offers, id)
				n.mu.Unlock()
			}()
		}
	}
}

// Stop cancels running transfers (keeping partial files), closes every
// socket, and delivers the last callbacks. The Node can be started again.
func (n *Node) Stop() {
	n.mu.Lock()
	node := n.node
	n.node = nil
	if n.cancel != nil {
		n.cancel()
	}
	n.mu.Unlock()
	if node != nil {
		node.Close()
	}
	n.wg.Wait()
	n.mu.Lock()
	n.offers = make(map[string]*peerdrop.IncomingTransfer)
	n.mu.Unlock()
}

// Close stops the Node and its callback goroutine for good.
func (n *Node) Close() {
	n.Stop()
	n.disp.close()
}

// IsRunning reports whether the Node is started.
func (n *Node) IsRunning() bool { return n.running() != nil }

func (n *Node) running() *peerdrop.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node
}

func (n *Node) nameOf(id identity.AccountID) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.names[id]; ok {
		return name
	}
	return id.Short()
}

// AccountID is this account's ID ("" when stopped).
func (n *Node) AccountID() string {
	if node := n.running(); node != nil {
		return node.Account().String()
	}
	return ""
}

// DeviceID is this device's ID ("" when stopped).
func (n *Node) DeviceID() string {
	if node := n.running(); node != nil {
		return node.Device().String()
	}
	return ""
}

// DHTAddr is this device's DHT node address, "IP:PORT" ("" when
// stopped): another device with no other DHT to join (two phones on a
// hotspot) can use it as its Bootstrap.
func (n *Node) DHTAddr() string {
	if node := n.running(); node != nil && node.DHTAddr().IsValid() {
		return node.DHTAddr().String()
	}
	return ""
}

// ContactString is what the user shares so that others can add them:
// "peerdrop:ACCOUNT-ID?name=NAME" (the command-line tool's format).
func (n *Node) ContactString(myName string) string {
	node := n.running()
	if node == nil {
		return ""
	}
	return identity.ContactString(node.Account(), myName)
}

// ExportIdentity returns the account and contacts encrypted with password
// (at least 8 characters), for ImportIdentity on another device. It takes
// about a second (the password hash): call it off the UI thread.
func (n *Node) ExportIdentity(password string) ([]byte, error) {
	if len(password) < 8 {
		return nil, errors.New("peerdrop: the password must have at least 8 characters")
	}
	node := n.running()
	if node == nil {
		return nil, ErrNotStarted
	}
	return node.ExportAccount([]byte(password))
}

// SetForeground switches between the foreground polling budget (incoming
// requests noticed within about a tenth of a second) and the background
// one (within seconds, for the battery).
func (n *Node) SetForeground(foreground bool) {
	n.mu.Lock()
	n.fg = foreground
	node := n.node
	n.mu.Unlock()
	if node != nil {
		n.applyForeground(node, foreground)
	}
}

// applyForeground sets the running node's poll budget and contact refresh
// for the foreground or the background.
func (n *Node) applyForeground(node *peerdrop.Node, foreground bool) {
	if foreground {
		node.SetPollBudget(n.cfg.ForegroundPollBudget)
		node.SetContactRefresh(0)
		return
	}
	node.SetPollBudget(n.cfg.BackgroundPollBudget)
	node.SetContactRefresh(time.Duration(n.cfg.BackgroundContactRefreshSeconds) * time.Second)
}

// NetworkChanged tells the Node the device changed networks: it
// re-bootstraps the DHT and refreshes contacts in the background.
func (n *Node) NetworkChanged() {
	if node := n.running(); node != nil {
		node.NetworkChanged()
	}
}

// HistoryJSON returns the transfer history, newest first, as a JSON array
// of peerdrop.Record objects.
func (n *Node) HistoryJSON() ([]byte, error) {
	if node := n.running(); node != nil {
		return json.Marshal(node.History())
	}
	hist, err := peerdrop.ReadHistory(n.cfg.Home)
	if err != nil {
		return nil, err
	}
	return json.Marshal(hist)
}

// StatsJSON returns the Node's counters as JSON.
func (n *Node) StatsJSON() ([]byte, error) {
	node := n.running()
	if node == nil {
		return nil, ErrNotStarted
	}
	return json.Marshal(node.Stats())
}

// Accept receives an offered file: into DownloadDir when destPath is
// empty, into destPath when it is an existing directory, else at exactly
// destPath (its directory must exist). It returns at once; progress and
// the end arrive through the listeners.
func (n *Node) Accept(offerID, destPath string) error {
	in, err := n.offer(offerID)
	if err != nil {
		return err
	}
	var dst transfer.Destination
	if destPath != "" {
		if fi, err := os.Stat(destPath); err == nil && fi.IsDir() {
			dst.Dir = destPath
		} else {
			if _, err := os.Stat(filepath.Dir(destPath)); err != nil {
				return fmt.Errorf("peerdrop: accept into %s: %w", destPath, err)
			}
			dst.Path = destPath
		}
	}
	return in.Accept(dst)
}

// Refuse declines an offer; the sender's device sees reason.
func (n *Node) Refuse(offerID, reason string) error {
	in, err := n.offer(offerID)
	if err != nil {
		return err
	}
	return in.Refuse(reason)
}

// CancelIncoming stops an incoming transfer, decided or not; a partial file
// is kept for Resume.
func (n *Node) CancelIncoming(offerID, reason string) error {
	in, err := n.offer(offerID)
	if err != nil {
		return err
	}
	in.Cancel(reason)
	return nil
}

func (n *Node) offer(id string) (*peerdrop.IncomingTransfer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, ok := n.offers[strings.TrimSpace(id)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownOffer, id)
	}
	return in, nil
}

// Resume asks the sender of a failed, canceled or interrupted incoming
// transfer (an ID from the history) for the rest of the file, continuing
// from the partial file. It returns at once; a refusal or failure arrives
// as a failed state.
func (n *Node) Resume(transferID string) error {
	var id transfer.ID
	if err := id.UnmarshalText([]byte(strings.TrimSpace(transferID))); err != nil {
		return fmt.Errorf("peerdrop: transfer ID %q: %w", transferID, err)
	}
	node, ctx, err := n.begin()
	if err != nil {
		return err
	}
	go func() {
		defer n.wg.Done()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		in, err := node.Reask(rctx, id)
		if err != nil {
			n.failed(id, peerdrop.Incoming, "", err)
			return
		}
		n.mu.Lock()
		n.offers[id.String()] = in
		n.mu.Unlock()
	}()
	return nil
}

// begin starts background work on the running Node: the caller's
// goroutine must call n.wg.Done.
func (n *Node) begin() (*peerdrop.Node, context.Context, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil {
		return nil, nil, ErrNotStarted
	}
	n.wg.Add(1)
	return n.node, n.ctx, nil
}

// failed reports a transfer that failed before the Node knew it (no
// event of its own) to the progress and state listeners.
func (n *Node) failed(id transfer.ID, dir peerdrop.Direction, name string, err error) {
	n.disp.event(peerdrop.Event{Kind: peerdrop.EventState, Time: time.Now(), Transfer: id, Direction: dir, Name: name,
		State: multidevice.Failed, Err: err, Error: err.Error()}, n.nameOf)
}
