package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/ice"
)

// nodeConfig turns the global options into a Node configuration.
func (a *app) nodeConfig() (*peerdrop.Config, error) {
	cfg := &peerdrop.Config{Home: a.home, Global: a.opt.global, LAN: a.opt.lan, Logger: a.log}
	boot, err := resolveBootstrap(a.ctx, a.opt.bootstrap)
	if err != nil {
		return nil, err
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
	for _, u := range splitList(a.opt.turn) {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, usageErr("--turn %q: a TURN URL starts with turn: or turns: (turn:HOST:PORT?transport=tcp)", u)
		}
		cfg.ICE.Servers = append(cfg.ICE.Servers, ice.Server{URL: u, Username: a.opt.turnUser, Password: a.opt.turnPass})
	}
	if a.opt.turn == "" && (a.opt.turnUser != "" || a.opt.turnPass != "") {
		return nil, usageErr("--turn-user and --turn-pass need --turn")
	}
	if len(boot) == 0 && !a.opt.lan && !a.opt.global {
		a.log.Warn("no DHT to join: give --bootstrap HOST:PORT, --lan or --global, or peers will not find this device")
	}
	return cfg, nil
}

// openNode opens the Node of the home with the global options; mod
// adjusts the configuration (events, auto-accept, download directory).
func (a *app) openNode(mod func(*peerdrop.Config)) (*peerdrop.Node, error) {
	cfg, err := a.nodeConfig()
	if err != nil {
		return nil, err
	}
	if mod != nil {
		mod(cfg)
	}
	return peerdrop.Open(cfg)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// resolveBootstrap parses HOST:PORT,...; host names are resolved (every
// address of each).
func resolveBootstrap(ctx context.Context, list string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, b := range splitList(list) {
		if ap, err := netip.ParseAddrPort(b); err == nil {
			out = append(out, ap)
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return nil, usageErr("--bootstrap %q: want HOST:PORT", b)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, usageErr("--bootstrap %q: bad port", b)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return nil, withHint(exitError, fmt.Errorf("--bootstrap %s: %w", b, err), "give the node's IP address, or check the name")
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
		}
	}
	return out, nil
}

// parseListen parses ADDR:PORT, or :PORT for every IPv4 address.
func parseListen(s string) (netip.AddrPort, error) {
	if strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, usageErr("--listen %q: want IP:PORT (port 0: any)", s)
	}
	return ap, nil
}
