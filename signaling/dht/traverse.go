package dht

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/dht/v2/types"
	"github.com/anacrolix/torrent/bencode"
)

// Traversals that do not wait for dead nodes. anacrolix's traversals end
// when they stall: when no query is outstanding. A node that has gone away
// (a closed device, a phone that lost its network) stays "good" in every
// table for 15 minutes after its last reply and is referred by everyone,
// so each traversal that reaches it waited the full query timeout (2 s)
// for nothing, and a 2 s request timeout was never met. So:
//
//   - a traversal ends when it stalls, or, once it has what it came for
//     (a token to put with, a value), when no reply has come for quiet:
//     the nodes still outstanding are taken as gone;
//   - a node that timed out (or was still silent after quiet when a
//     traversal gave up on it) twice with no reply in between is left out
//     of this node's traversals for deadFor, unless it is heard from
//     again; if every known node is left out, all are tried again.
const (
	quiet   = 500 * time.Millisecond
	deadFor = 2 * time.Minute
)

// traverse runs a traversal towards target with query until it stalls,
// ctx ends, or, once enough reports true, no reply came for quiet. The
// returned operation has stopped. It fails only when no node is known to
// start from.
func (d *Node) traverse(ctx context.Context, target krpc.ID, alpha int,
	query func(ctx context.Context, addr krpc.NodeAddr) (traversal.QueryResult, error),
	enough func() bool,
) (*traversal.Operation, error) {
	nodes, err := d.srv.TraversalStartingNodes()
	if err != nil {
		return nil, err
	}
	self, me := int160.FromByteArray(d.srv.ID()), d.Addr()
	replied := make(chan struct{}, 1)
	op := traversal.Start(traversal.OperationInput{
		Alpha:  alpha,
		Target: target,
		DoQuery: func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			start := time.Now()
			res, err := query(ctx, addr)
			ap := addr.ToNodeAddrPort().AddrPort
			if d.citizen.answered(ap, err, start) {
				select {
				case replied <- struct{}{}:
				default:
				}
			}
			return res
		},
		NodeFilter: func(n types.AddrMaybeId) bool {
			if n.Id.Ok && n.Id.Value == self || n.Addr.AddrPort == me {
				return false // other nodes refer this one to itself
			}
			return d.srv.TraversalNodeFilter(n) && !d.citizen.isDead(n.Addr.AddrPort)
		},
	})
	// Start from the nodes not taken as gone, or from all if none is left:
	// a bootstrap node that missed two replies under load is still the
	// best guess.
	live := nodes[:0:0]
	for _, n := range nodes {
		if !d.citizen.isDead(n.Addr.AddrPort) {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		for _, n := range nodes {
			d.citizen.forgive(n.Addr.AddrPort)
		}
		live = nodes
	}
	op.AddNodes(live)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
wait:
	for {
		select {
		case <-op.Stalled():
			break wait
		case <-ctx.Done():
			break wait
		case <-timer.C:
			break wait
		case <-replied:
			if enough() {
				timer.Reset(quiet)
			}
		}
	}
	op.Stop()
	<-op.Stopped()
	return op, nil
}

// getResult is the newest valid item a get traversal found.
type getResult struct {
	seq int64
	v   []byte
	sig [64]byte
}

// get returns the highest seq of the item at target: from the cached
// storers if one of them answers (see storers.go), else from a get
// traversal, whose closest nodes are cached; and from this node's own
// store, where others put what this node is among the closest to (on a
// small DHT a device is: a put that reached it and not the node it reads
// from would be missed).
func (d *Node) get(ctx context.Context, target bep44.Target, salt []byte) (getResult, bool) {
	own, found := d.ownItem(target, salt)
	r, ok := d.getRemote(ctx, target, salt)
	if !ok || found && own.seq > r.seq {
		return own, found
	}
	return r, ok
}

// ownItem returns the item at target in this node's own store.
func (d *Node) ownItem(target bep44.Target, salt []byte) (getResult, bool) {
	i, err := d.local.Get(target)
	if err != nil || !bytes.Equal(i.Salt, salt) {
		return getResult{}, false
	}
	v, err := bencode.Marshal(i.V)
	if err != nil {
		return getResult{}, false
	}
	return getResult{seq: i.Seq, v: v, sig: i.Sig}, true
}

// getRemote is get from other nodes.
func (d *Node) getRemote(ctx context.Context, target bep44.Target, salt []byte) (getResult, bool) {
	if nodes := d.live(d.storers.nodes(target), cacheAsk); nodes != nil {
		r, found, replied := d.getFrom(ctx, nodes, target, salt, nil)
		if replied > 0 || ctx.Err() != nil {
			return r, found
		}
		d.storers.forget(target)
	}
	var (
		mu    sync.Mutex
		found bool
		r     getResult
	)
	op, err := d.traverse(ctx, target, 3, func(ctx context.Context, addr krpc.NodeAddr) (traversal.QueryResult, error) {
		res := d.srv.Get(ctx, anadht.NewAddr(addr.UDP()), target, nil, anadht.QueryRateLimiting{})
		if rep := res.Reply.R; rep != nil {
			if got, ok := validItem(rep, target, salt); ok {
				mu.Lock()
				if !found || got.seq > r.seq {
					found, r = true, got
				}
				mu.Unlock()
			}
		}
		return res.TraversalQueryResult(addr), res.ToError()
	}, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return found
	})
	if err == nil && ctx.Err() == nil {
		d.storers.keep(target, closest(op))
	}
	mu.Lock()
	defer mu.Unlock()
	return r, found
}

// answered records the outcome of a query to addr begun at start: a reply
// (true), or a time out, or silence still when the operation gave up
// after quiet; other errors (an error reply, a canceled operation) count
// as neither.
func (c *citizen) answered(addr netip.AddrPort, err error, start time.Time) bool {
	switch {
	case err == nil:
		c.heardFrom(addr)
		return true
	case errors.Is(err, anadht.TransactionTimeout),
		errors.Is(err, context.Canceled) && time.Since(start) >= quiet:
		c.timedOut(addr)
	}
	return false
}

// timedOut counts a query to addr that timed out (see traverse).
func (c *citizen) timedOut(addr netip.AddrPort) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !roomFor(c.dead, addr, func(f failures) time.Time { return f.at }, deadFor, now) {
		return
	}
	f := c.dead[addr]
	if now.Sub(f.at) >= deadFor {
		f.n = 0
	}
	c.dead[addr] = failures{n: f.n + 1, at: now}
}

// forgive forgets addr's time outs.
func (c *citizen) forgive(addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.dead, addr)
}

func (c *citizen) isDead(addr netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.dead[addr]
	return ok && f.n >= 2 && time.Since(f.at) < deadFor
}

// failures counts the time outs of a node since its last reply.
type failures struct {
	n  int
	at time.Time
}
