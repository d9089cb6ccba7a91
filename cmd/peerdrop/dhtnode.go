package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop/internal/netopt"
	"github.com/peerdrop/peerdrop/signaling/dht"
	"github.com/peerdrop/peerdrop/signaling/proxy"
)

// defaultDHTNodeListen is dht-node's address when --listen is not given.
const defaultDHTNodeListen = "0.0.0.0:6882"

func (a *app) dhtNodeCommand() *cobra.Command {
	var state string
	var every, runFor time.Duration
	var px proxyFlags
	c := &cobra.Command{
		Use:   "dht-node",
		Short: "Run a standalone DHT node: the bootstrap node of a LAN or a site with no internet",
		Long: `dht-node runs a DHT node and nothing else: devices list it with --bootstrap
HOST:PORT (or find it with --lan) and exchange their device lists and requests
through it. It is the hardened node of the library (bounded store, per-source
quotas, send limiter), needs no account, and contacts no other node unless given
--bootstrap, --lan or --global. Default --listen: ` + defaultDHTNodeListen + ` (UDP).

With --proxy ADDR it also serves signaling over HTTPS on ADDR (TCP), for devices
on networks that block UDP: they give --proxy with the address it prints. Its
certificate is --proxy-cert/--proxy-key (from a CA: devices use https://HOST:PORT)
or one it creates and keeps in the home (proxy-tls.pem), whose key's pin is part
of the printed peerdrop-proxy://HOST:PORT#PIN address.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return a.dhtNode(state, every, runFor, px) },
	}
	c.Flags().StringVar(&state, "state", "", "file that keeps the routing table across restarts")
	c.Flags().StringVar(&px.listen, "proxy", "", "also serve signaling over HTTPS on `ADDR` (TCP, e.g. :443), for devices on networks that block UDP")
	c.Flags().StringVar(&px.cert, "proxy-cert", "", "the proxy's certificate chain (PEM `FILE`, from a CA); default: a self-signed one kept in the home")
	c.Flags().StringVar(&px.key, "proxy-key", "", "the key of --proxy-cert (PEM `FILE`)")
	c.Flags().StringVar(&px.host, "proxy-host", "", "the `HOST` devices reach the proxy at, for the printed address (default: the --proxy IP, else this machine's name)")
	c.Flags().DurationVar(&every, "stats", time.Minute, "how often to print statistics (0: never)")
	c.Flags().DurationVar(&runFor, "for", 0, "stop after this long (0: until interrupted)")
	return c
}

// dhtNode runs the dht-node command: the node, and the proxy with
// --proxy, until interrupted or runFor has passed, printing statistics
// every so often.
func (a *app) dhtNode(state string, every, runFor time.Duration, px proxyFlags) error {
	d, err := a.startDHTNode(state)
	if err != nil {
		return err
	}
	defer d.Close()
	var srv *proxy.Server
	if px.listen != "" {
		if srv, err = a.serveProxy(d, px); err != nil {
			return err
		}
		defer srv.Close()
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
	report := func(what string) {
		a.stats(d, what)
		if srv != nil {
			a.proxyStats(srv.Stats())
		}
	}
	for {
		select {
		case <-ctx.Done():
			report("stopped")
			return nil
		case <-tick:
			report("stats")
		}
	}
}

// startDHTNode starts the node (--listen, --bootstrap, --global, --lan)
// and says where it listens.
func (a *app) startDHTNode(state string) (*dht.Node, error) {
	listen := a.opt.listen
	if listen == "" {
		listen = defaultDHTNodeListen
	}
	ap, err := parseListen(listen)
	if err != nil {
		return nil, err
	}
	boot, err := netopt.Bootstrap(a.ctx, a.opt.bootstrap)
	if err != nil {
		return nil, optErr(err, "give the node's IP address, or check the name")
	}
	cfg := &dht.Config{Listen: ap, Bootstrap: boot, Global: a.opt.global, StateFile: state, Serve: true, Logger: a.log}
	if a.opt.lan {
		cfg.LAN = &dht.LANConfig{}
	}
	d, err := dht.New(cfg)
	if err != nil {
		return nil, withHint(exitError, err, "is the port in use? pick another with --listen")
	}
	id := d.ID()
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "listening", "addr": d.Addr().String(), "id": fmt.Sprintf("%x", id)})
	} else {
		a.printf("DHT node %x listening on %s (UDP). Devices use: --bootstrap %s\n", id[:8], d.Addr(), d.Addr())
	}
	return d, nil
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

// proxyFlags are dht-node's proxy options.
type proxyFlags struct {
	listen, cert, key, host string
}

// serveProxy starts the signaling proxy over d and prints its address.
func (a *app) serveProxy(d *dht.Node, px proxyFlags) (*proxy.Server, error) {
	var cert tls.Certificate
	var pin string
	var err error
	switch {
	case px.cert != "" || px.key != "":
		if px.cert == "" || px.key == "" {
			return nil, usageErr("--proxy-cert and --proxy-key go together")
		}
		if cert, err = tls.LoadX509KeyPair(px.cert, px.key); err != nil {
			return nil, withHint(exitError, fmt.Errorf("proxy certificate: %w", err), "give the PEM files of the certificate chain and its key")
		}
	default:
		if cert, pin, err = proxy.SelfSigned(filepath.Join(a.home, "proxy-tls.pem")); err != nil {
			return nil, withHint(exitError, err, "check that the home is writable, or give --proxy-cert and --proxy-key")
		}
	}
	listen := px.listen
	if strings.HasPrefix(listen, ":") {
		listen = "0.0.0.0" + listen
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, withHint(exitError, fmt.Errorf("proxy: %w", err), "is the port in use? pick another with --proxy")
	}
	srv, err := proxy.NewServer(&proxy.ServerConfig{Backend: d, Certificate: cert, Logger: a.log.With("layer", "proxy")})
	if err != nil {
		l.Close()
		return nil, err
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("proxy stopped", "err", err)
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	if px.host != "" {
		host = px.host
	} else if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	addr := proxy.Addr{HostPort: net.JoinHostPort(host, port), Pin: pin}.String()
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "proxy", "addr": addr, "listen": l.Addr().String()})
	} else {
		a.printf("Signaling proxy on %s (TCP, TLS). Devices use: --proxy %s\n", l.Addr(), addr)
	}
	return srv, nil
}

func (a *app) proxyStats(st proxy.ServerStats) {
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "proxy-stats", "puts": st.Puts, "gets": st.Gets, "streams": st.Streams,
			"notified": st.Notified, "bad_requests": st.BadRequests, "rate_limited": st.RateLimited,
			"conns_refused": st.ConnsRefused, "streams_refused": st.StreamsRefused})
		return
	}
	a.printf("proxy: %d puts, %d gets, %d streams open, %d notified; refused: %d bad, %d over rate, %d connections, %d streams\n",
		st.Puts, st.Gets, st.Streams, st.Notified, st.BadRequests, st.RateLimited, st.ConnsRefused, st.StreamsRefused)
}
