package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop/internal/netopt"
	"github.com/peerdrop/peerdrop/signaling/dht"
)

// defaultDHTNodeListen is dht-node's address when --listen is not given.
const defaultDHTNodeListen = "0.0.0.0:6882"

func (a *app) dhtNodeCommand() *cobra.Command {
	var state string
	var every, runFor time.Duration
	c := &cobra.Command{
		Use:   "dht-node",
		Short: "Run a standalone DHT node: the bootstrap node of a LAN or a site with no internet",
		Long: `dht-node runs a DHT node and nothing else: devices list it with --bootstrap
HOST:PORT (or find it with --lan) and exchange their device lists and requests
through it. It is the hardened node of the library (bounded store, per-source
quotas, send limiter), needs no account, and contacts no other node unless given
--bootstrap, --lan or --global. Default --listen: ` + defaultDHTNodeListen + ` (UDP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen := a.opt.listen
			if listen == "" {
				listen = defaultDHTNodeListen
			}
			ap, err := parseListen(listen)
			if err != nil {
				return err
			}
			boot, err := netopt.Bootstrap(a.ctx, a.opt.bootstrap)
			if err != nil {
				return optErr(err, "give the node's IP address, or check the name")
			}
			cfg := &dht.Config{Listen: ap, Bootstrap: boot, Global: a.opt.global, StateFile: state, Logger: a.log}
			if a.opt.lan {
				cfg.LAN = &dht.LANConfig{}
			}
			d, err := dht.New(cfg)
			if err != nil {
				return withHint(exitError, err, "is the port in use? pick another with --listen")
			}
			defer d.Close()
			id := d.ID()
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "listening", "addr": d.Addr().String(), "id": fmt.Sprintf("%x", id)})
			} else {
				a.printf("DHT node %x listening on %s (UDP). Devices use: --bootstrap %s\n", id[:8], d.Addr(), d.Addr())
			}
			ctx := a.ctx
			if runFor > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, runFor)
				defer cancel()
			}
			booted := make(chan struct{})
			go func() {
				defer close(booted)
				bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := d.Bootstrap(bctx); err != nil && ctx.Err() == nil {
					a.log.Warn("bootstrap failed", "err", err)
				}
			}()
			defer func() { <-booted }()
			var tick <-chan time.Time
			if every > 0 {
				t := time.NewTicker(every)
				defer t.Stop()
				tick = t.C
			}
			for {
				select {
				case <-ctx.Done():
					a.stats(d, "stopped")
					return nil
				case <-tick:
					a.stats(d, "stats")
				}
			}
		},
	}
	c.Flags().StringVar(&state, "state", "", "file that keeps the routing table across restarts")
	c.Flags().DurationVar(&every, "stats", time.Minute, "how often to print statistics (0: never)")
	c.Flags().DurationVar(&runFor, "for", 0, "stop after this long (0: until interrupted)")
	return c
}

func (a *app) stats(d *dht.Node, what string) {
	st := d.Stats()
	if a.opt.json {
		a.emitJSON(map[string]any{"event": what, "nodes": st.Nodes, "good_nodes": st.GoodNodes, "items": st.StoredItems,
			"packets_sent": st.PacketsSent, "queries_dropped": st.QueriesDropped})
		return
	}
	a.printf("%s: %d nodes (%d good), %d items stored, %d packets sent, %d hostile queries dropped\n",
		what, st.Nodes, st.GoodNodes, st.StoredItems, st.PacketsSent, st.QueriesDropped)
}
