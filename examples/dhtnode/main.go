// Command dhtnode runs a standalone peerdrop DHT node: a bootstrap node
// for a LAN or a site with no internet, which peerdrop devices list as
// their bootstrap address. It is the hardened signaling.DHT (bounded
// store, per-source quotas, send limiter); it stores items for others and
// answers queries, and saves its routing table for a fast restart.
//
//	go run ./examples/dhtnode -listen 0.0.0.0:6882 [-state FILE] [-lan] [-bootstrap HOST:PORT,...]
//
// It contacts no node unless given -bootstrap, -lan (multicast on the
// LAN) or -global (the public BitTorrent DHT routers).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

func main() {
	listen := flag.String("listen", "0.0.0.0:6882", "UDP address to listen on")
	boot := flag.String("bootstrap", "", "comma-separated HOST:PORT of other DHT nodes")
	state := flag.String("state", "", "file that keeps the routing table across restarts")
	lan := flag.Bool("lan", false, "discover other nodes on the LAN by multicast")
	global := flag.Bool("global", false, "also bootstrap from the public BitTorrent DHT routers")
	stats := flag.Duration("stats", time.Minute, "how often to print statistics (0: never)")
	runFor := flag.Duration("for", 0, "stop after this long (0: until interrupted)")
	flag.Parse()
	if err := run(*listen, *boot, *state, *lan, *global, *stats, *runFor); err != nil {
		fmt.Fprintln(os.Stderr, "dhtnode:", err)
		os.Exit(1)
	}
}

func run(listen, boot, state string, lan, global bool, every, runFor time.Duration) error {
	cfg := &signaling.DHTConfig{StateFile: state, Global: global}
	var err error
	if cfg.Listen, err = netip.ParseAddrPort(listen); err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	for _, b := range strings.Split(boot, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			return fmt.Errorf("-bootstrap %q: %w", b, err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, ap)
	}
	if lan {
		cfg.LAN = &signaling.LANConfig{}
	}
	d, err := signaling.NewDHT(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	id := d.ID()
	fmt.Printf("dht node %x listening on %s\n", id[:8], d.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, runFor)
		defer cancel()
	}
	go func() {
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := d.Bootstrap(bctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "dhtnode: bootstrap:", err)
		}
	}()
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			st := d.Stats()
			fmt.Printf("stopping: %d nodes, %d items stored, %d packets sent\n", st.Nodes, st.StoredItems, st.PacketsSent)
			return nil
		case <-tick:
			st := d.Stats()
			fmt.Printf("%d nodes (%d good), %d items stored, %d packets sent, %d hostile queries dropped\n",
				st.Nodes, st.GoodNodes, st.StoredItems, st.PacketsSent, st.QueriesDropped)
		}
	}
}
