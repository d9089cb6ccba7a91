package main

import (
	"errors"
	"net/netip"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/internal/netopt"
	"github.com/peerdrop/peerdrop/signaling/proxy"
)

// nodeConfig turns the global options into a Node configuration.
func (a *app) nodeConfig() (*peerdrop.Config, error) {
	cfg := &peerdrop.Config{Home: a.home, Global: a.opt.global, LAN: a.opt.lan, PortMapping: a.opt.portmap || a.opt.global,
		DeliveryWindow: a.opt.retryFor, Logger: a.log}
	if a.opt.retryFor <= 0 {
		cfg.DeliveryWindow = -1
	}
	boot, err := netopt.Bootstrap(a.ctx, a.opt.bootstrap)
	if err != nil {
		return nil, optErr(err, "give the node's IP address, or check the name")
	}
	cfg.Bootstrap = boot
	if a.opt.listen != "" {
		ap, err := parseListen(a.opt.listen)
		if err != nil {
			return nil, err
		}
		cfg.DHTListen = ap
		cfg.ICE.ListenAddrs = []netip.AddrPort{ap}
	}
	if cfg.ICE.Servers, err = netopt.Servers(a.opt.stun, a.opt.turn, a.opt.turnUser, a.opt.turnPass); err != nil {
		return nil, optErr(err, "")
	}
	for _, p := range netopt.List(a.opt.proxy) {
		if _, err := proxy.ParseAddr(p); err != nil {
			return nil, usageErr("--proxy: %v", err)
		}
		cfg.Proxies = append(cfg.Proxies, p)
	}
	if len(boot) == 0 && !a.opt.lan && !a.opt.global && len(cfg.Proxies) == 0 {
		a.log.Warn("no DHT to join: give --bootstrap HOST:PORT, --lan, --global or --proxy URL, or peers will not find this device")
	}
	return cfg, nil
}

// closeNode closes a Node openNode opened, not a running recv's.
func (a *app) closeNode(n *peerdrop.Node) {
	if n != a.shared {
		n.Close()
	}
}

// optErr makes a malformed option a usage error.
func optErr(err error, hint string) error {
	var se *netopt.SyntaxError
	if errors.As(err, &se) {
		return usageErr("%v", err)
	}
	return withHint(exitError, err, hint)
}

func parseListen(s string) (netip.AddrPort, error) {
	ap, err := netopt.Listen(s)
	if err != nil {
		return ap, optErr(err, "")
	}
	return ap, nil
}

// openNode opens the Node of the home with the global options; mod
// adjusts the configuration (events, auto-accept, download directory).
// Nodes are short-lived (read-only in the DHT, see
// peerdrop.Config.ShortLived) unless mod says otherwise, as recv does.
func (a *app) openNode(mod func(*peerdrop.Config)) (*peerdrop.Node, error) {
	if a.shared != nil {
		return a.shared, nil // the running recv's (control.go)
	}
	cfg, err := a.nodeConfig()
	if err != nil {
		return nil, err
	}
	cfg.ShortLived = true
	if mod != nil {
		mod(cfg)
	}
	return peerdrop.Open(cfg)
}
