package peerdrop

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/tlslink"
)

// Link reuse: a link made for a file offer (a request 'F') negotiates
// ALPN peerdrop/2 when both sides speak it, and then carries the file
// protocol in yamux streams, one transfer per stream, opened by the side
// that sends the file. Both sides keep the link in their pool, under the
// other device's ID, so that the next file to that device, in either
// direction, opens a stream instead of signaling, ICE and TLS; a link
// with no stream for Config.LinkIdle is closed. Files larger than
// maxStreamed (64 MiB) get a link of their own, where yamux's extra copy
// would cost more than making the link. A re-ask of one file gets a
// single-use link (peerdrop/1), where the re-asking side reads the offer
// on the link it dialed; a re-ask of many files asks for streams.

// errNoStreams: a link for many files in one offer negotiated no streams
// (the other device's peerdrop is older).
var errNoStreams = errors.New("the other device's peerdrop cannot take many files in one offer (no ALPN peerdrop/2)")

// maxStreamed is the largest file sent in a stream of a kept link: a
// larger one gets a link of its own (peerdrop/1). yamux copies what it
// receives once more: a 1 GiB file through the CLI took 1.88 s in a
// stream against 1.52 s on a link of its own (median of 4), while making
// a link costs about 70 ms, the time of 35 MB.
const maxStreamed = 64 << 20

// maxStreamWindow bounds what one stream may have in flight (and what a
// receiver buffers for it): 8 MiB keeps 200 MB/s at 40 ms round trips.
const maxStreamWindow = 8 << 20

// muxLink is a link to one device that carries several transfers.
type muxLink struct {
	n    *Node
	sess *yamux.Session
	peer signaling.Peer
	sel  ice.Selected
}

// protocols are the ALPN protocols offered on the link of a request.
func (n *Node) protocols(req request) []string {
	if req.kind == kindFile && !req.single && (n.cfg.LinkIdle > 0 || req.bundle) || req.kind == kindReask && req.bundle {
		return []string{tlslink.ALPNMux, tlslink.ALPN}
	}
	return []string{tlslink.ALPN}
}

// adopt makes a link that negotiated peerdrop/2 a pooled muxLink and
// starts serving the streams the peer opens; it returns nil for a
// single-use link.
func (n *Node) adopt(l *tlslink.Link, sel ice.Selected, peer signaling.Peer, client bool) (*muxLink, error) {
	if l.Protocol() != tlslink.ALPNMux {
		return nil, nil
	}
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = 16
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.MaxStreamWindowSize = maxStreamWindow
	cfg.StreamCloseTimeout = time.Minute
	cfg.LogOutput = io.Discard
	var sess *yamux.Session
	var err error
	if client {
		sess, err = yamux.Client(l, cfg)
	} else {
		sess, err = yamux.Server(l, cfg)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	m := &muxLink{n: n, sess: sess, peer: peer, sel: sel}
	n.mu.Lock()
	old := n.links[peer.Device]
	n.links[peer.Device] = m
	n.mu.Unlock()
	if old != nil {
		old.retire() // its streams finish; it takes no new ones
	}
	if !n.spawn(m.serve) || !n.spawn(m.expire) {
		sess.Close()
		return nil, ErrClosed
	}
	n.log.Debug("link pooled", "device", peer.Device.Short(), "path", sel.Kind())
	return m, nil
}

// pooled returns the live link to a device, if any.
func (n *Node) pooled(dev identity.DeviceID) *muxLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.links[dev]
	if m != nil && m.sess.IsClosed() {
		delete(n.links, dev)
		m = nil
	}
	return m
}

// open opens a stream for one transfer.
func (m *muxLink) open() (io.ReadWriteCloser, error) {
	st, err := m.sess.OpenStream()
	if err != nil {
		m.retire()
		return nil, fmt.Errorf("peerdrop: reusing the link to %s: %w", m.peer.Device.Short(), err)
	}
	return st, nil
}

// retire takes the link out of the pool; the session closes once its
// streams are done (expire).
func (m *muxLink) retire() {
	m.n.mu.Lock()
	if m.n.links[m.peer.Device] == m {
		delete(m.n.links, m.peer.Device)
	}
	m.n.mu.Unlock()
}

// serve takes the streams the peer opens: each is an offer.
func (m *muxLink) serve() {
	defer m.retire()
	defer m.sess.Close()
	for {
		st, err := m.sess.AcceptStream()
		if err != nil {
			if !m.sess.IsClosed() && !errors.Is(err, yamux.ErrSessionShutdown) {
				m.n.log.Debug("link ended", "device", m.peer.Device.Short(), "err", err)
			}
			return
		}
		if !m.n.isContact(m.peer.Account) { // removed since the link was made
			st.Close()
			continue
		}
		if !m.n.spawn(func() { m.n.offerStream(st, m.peer, m.sel.Relayed) }) {
			st.Close()
			return
		}
	}
}

// expire closes the session when it has had no stream for LinkIdle, or
// when it is retired and its streams are done, or when the node closes.
func (m *muxLink) expire() {
	defer m.sess.Close()
	idle := m.n.cfg.LinkIdle
	if idle <= 0 { // a bundle's link, with reuse off: closed after its streams
		idle = time.Second
	}
	tick := time.NewTicker(min(idle/4, time.Second))
	defer tick.Stop()
	idleSince := time.Now()
	for {
		select {
		case <-m.n.ctx.Done():
			return
		case <-m.sess.CloseChan():
			return
		case <-tick.C:
		}
		if m.sess.NumStreams() > 0 {
			idleSince = time.Now()
			continue
		}
		if time.Since(idleSince) >= idle || m.retired() {
			m.retire()
			return
		}
	}
}

func (m *muxLink) retired() bool {
	m.n.mu.Lock()
	defer m.n.mu.Unlock()
	return m.n.links[m.peer.Device] != m
}
