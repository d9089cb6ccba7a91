package peerdrop

import (
	"context"
	"time"

	"github.com/peerdrop/peerdrop/transfer"
)

// The Node's background workers besides those of its layers: joining the
// DHT, and removing old partial files. (Watching contacts is in
// contacts.go, retrying deliveries in deliver.go, kept links in links.go.)

// expirePartials removes, at start and every hour, the partial files of
// incoming transfers that ended without finishing more than KeepPartials
// ago (see Config.KeepPartials).
func (n *Node) expirePartials() {
	defer n.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		removed, err := n.records.expirePartials(time.Now().Add(-n.cfg.KeepPartials), func(id transfer.ID) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			_, running := n.inflight[id]
			return running
		})
		if removed > 0 || err != nil {
			n.log.Info("partial files of old transfers removed", "count", removed, "keep", n.cfg.KeepPartials, "err", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bootstrap joins the DHT and closes n.ready when the routing table is
// worth using: when the bootstrap traversal ended, or after 10s of trying
// (unreachable bootstrap nodes), or, with LAN discovery and nothing else,
// once a first node was found (at most 3s), or when a signaling proxy
// answered (a network that blocks UDP must not wait for the DHT). Until then the device list is
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
	case <-n.proxied:
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
