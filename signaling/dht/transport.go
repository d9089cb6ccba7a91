package dht

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	anadht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/torrent/bencode"

	"github.com/peerdrop/peerdrop/signaling"
)

// The signaling.Transport (and Reacher) implementation: Put and Get of
// BEP 44 mutable items through the traversals of traverse.go and the
// storer cache of storers.go.

// Put implements Transport: the nodes closest to the target (the cached
// storers, or those a get traversal finds) are asked for a write token,
// then each is asked to store the item. It fails with
// signaling.ErrNotStored when no node accepted it (anacrolix's getput.Put
// reports success either way).
func (d *Node) Put(ctx context.Context, it signaling.Item) error {
	if !it.Verify() {
		return fmt.Errorf("%w: invalid item", signaling.ErrNotStored)
	}
	target := it.Target()
	local := false
	if d.cfg.Serve {
		local = d.local.Put(&bep44.Item{V: it.Value, K: it.Key, Salt: it.Salt, Sig: it.Sig, Seq: it.Seq}) == nil
	}
	var to []putTo
	if nodes := d.live(d.storers.nodes(target), storersPerKey); nodes != nil {
		tokens := make([]string, len(nodes))
		d.getFrom(ctx, nodes, target, it.Salt, tokens)
		for i, n := range nodes {
			if tokens[i] != "" {
				to = append(to, putTo{n.Addr, tokens[i]})
			}
		}
		if len(to) == 0 {
			d.storers.forget(target)
		}
	}
	if len(to) == 0 {
		var tokens atomic.Int64
		op, err := d.traverse(ctx, target, 3, func(ctx context.Context, addr krpc.NodeAddr) (traversal.QueryResult, error) {
			res := d.srv.Get(ctx, anadht.NewAddr(addr.UDP()), target, nil, anadht.QueryRateLimiting{})
			tqr := res.TraversalQueryResult(addr)
			tqr.ClosestData, _ = tqr.ClosestData.(string)
			if tqr.ClosestData == nil {
				tqr.ResponseFrom = nil
			} else {
				tokens.Add(1)
			}
			return tqr, res.ToError()
		}, func() bool { return tokens.Load() > 0 })
		if err != nil {
			if local {
				d.putsOK.Add(1)
				return nil
			}
			return fmt.Errorf("%w: no nodes known", signaling.ErrNotStored)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d.storers.keep(target, closest(op))
		op.Closest().Range(func(e k_nearest_nodes.Elem) {
			to = append(to, putTo{nodeAddr(e.Addr.AddrPort), e.Data.(string)})
		})
	}
	put := bep44.Put{V: it.Value, K: &it.Key, Salt: it.Salt, Sig: it.Sig, Seq: it.Seq}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for _, p := range to {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := d.srv.Put(ctx, anadht.NewAddr(p.addr.UDP()), put, p.token, anadht.QueryRateLimiting{})
			if res.ToError() == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	d.putReplies.Add(ok.Load())
	if ok.Load() == 0 {
		d.storers.forget(target)
		if local {
			d.putsOK.Add(1)
			return nil
		}
		d.putsFailed.Add(1)
		return signaling.ErrNotStored
	}
	d.putsOK.Add(1)
	return nil
}

// putTo is a node to put at, with its write token.
type putTo struct {
	addr  krpc.NodeAddr
	token string
}

// Get implements Transport.
func (d *Node) Get(ctx context.Context, key [32]byte, salt []byte) (signaling.Item, error) {
	d.gets.Add(1)
	target := signaling.Target(key, salt)
	res, ok := d.get(ctx, target, salt)
	if !ok {
		if ctx.Err() != nil {
			return signaling.Item{}, ctx.Err()
		}
		return signaling.Item{}, signaling.ErrNotFound
	}
	var v []byte
	if err := bencode.Unmarshal(res.v, &v); err != nil {
		return signaling.Item{}, signaling.ErrNotFound
	}
	it := signaling.Item{Key: key, Salt: append([]byte(nil), salt...), Seq: res.seq, Value: v, Sig: res.sig}
	if !it.Verify() {
		return signaling.Item{}, signaling.ErrNotFound
	}
	return it, nil
}

// Reachable reports whether the node reaches any other node: its routing
// table is not empty (implements signaling.Reacher). A Serve node is
// always reachable: it stores items itself. A device on a network that
// blocks UDP never reaches anyone, and signaling.Multi then uses its
// other routes alone.
func (d *Node) Reachable() bool {
	return d.cfg.Serve || d.srv.NumNodes() > 0
}
