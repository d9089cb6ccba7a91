package peerdrop

import (
	"context"
	"errors"
	"fmt"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/tlslink"
)

// dial asks a device for a connection through signaling, as the
// ICE-controlling side and TLS client, and returns the authenticated link.
func (n *Node) dial(ctx context.Context, peer signaling.Peer, req request) (*tlslink.Link, ice.Selected, error) {
	sess, err := n.agent.NewSession(ctx, true)
	if err != nil {
		return nil, ice.Selected{}, err
	}
	defer sess.Close()
	req.desc = sess.Description()
	payload, err := req.marshal()
	if err != nil {
		return nil, ice.Selected{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	ans, err := n.sig.Request(rctx, peer, payload)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, ice.Selected{}, fmt.Errorf("%w: waited %v", ErrNoAnswer, n.cfg.RequestTimeout)
		}
		if ctx.Err() == nil {
			err = &unreachedError{err} // the request could not be put
		}
		return nil, ice.Selected{}, err
	}
	desc, err := parseAnswer(ans.Payload)
	if err != nil {
		return nil, ice.Selected{}, err
	}
	return n.link(ctx, sess, desc, peer, true, n.protocols(req))
}

// answer accepts a request as the ICE-controlled side and TLS server.
func (n *Node) answer(ctx context.Context, in *signaling.Incoming, req request) (*tlslink.Link, ice.Selected, error) {
	sess, err := n.agent.NewSession(ctx, false)
	if err != nil {
		return nil, ice.Selected{}, err
	}
	defer sess.Close()
	payload, err := acceptAnswer(sess.Description())
	if err != nil {
		return nil, ice.Selected{}, err
	}
	if err := in.Answer(ctx, payload); err != nil {
		return nil, ice.Selected{}, err
	}
	// The answering side always offers streams for a file: the
	// requester chooses (a bundle needs them).
	req.bundle = true
	return n.link(ctx, sess, req.desc, in.From, false, n.protocols(req))
}

// link runs ICE with the peer's description, then TLS pinned to the peer,
// offering the ALPN protocols given (Node.protocols).
func (n *Node) link(ctx context.Context, sess *ice.Session, desc ice.Description, peer signaling.Peer, client bool, protocols []string) (*tlslink.Link, ice.Selected, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ConnectTimeout)
	defer cancel()
	conn, err := sess.Connect(ctx, desc)
	if err != nil {
		return nil, ice.Selected{}, err
	}
	sel := conn.Selected()
	tc := &tlslink.Config{Device: n.dev, PeerAccount: peer.Account, PeerDevice: peer.Device, Protocols: protocols, Logger: n.log.With("layer", "tls")}
	var l *tlslink.Link
	if client {
		l, err = tlslink.Client(ctx, conn, tc)
	} else {
		l, err = tlslink.Server(ctx, conn, tc)
	}
	if err != nil {
		conn.Close()
		return nil, sel, err
	}
	return l, sel, nil
}

// answerNo refuses a request without asking the application.
func (n *Node) answerNo(in *signaling.Incoming, code NoCode, text string) {
	n.refused.Add(1)
	n.log.Info("request refused", "from", in.From.Account.Short(), "device", in.From.Device.Short(), "why", code.String())
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
	defer cancel()
	_ = in.Answer(ctx, noAnswer(code, text))
}
