package peerdrop

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/proxy"
)

// startProxies makes the signaling transport a signaling.Multi over the
// DHT (or Config.Transport) and Config.Proxies, and closes n.proxied once
// a proxy answers.
func (n *Node) startProxies() error {
	if len(n.cfg.Proxies) == 0 {
		return nil
	}
	routes := []signaling.Route{{Name: "dht", Transport: n.tr}}
	for _, addr := range n.cfg.Proxies {
		c, err := proxy.NewClient(addr, &proxy.ClientConfig{DialContext: n.cfg.ICE.DialContext,
			Logger: n.log.With("layer", "proxy")})
		if err != nil {
			return fmt.Errorf("peerdrop: %w", err)
		}
		n.proxies = append(n.proxies, c)
		routes = append(routes, signaling.Route{Name: c.Name(), Transport: c})
	}
	n.multi = signaling.NewMulti(routes...)
	n.tr = n.multi
	n.wg.Add(1)
	go n.pingProxies()
	return nil
}

// pingProxies closes n.proxied when a proxy first answers, trying each
// every few seconds until then.
func (n *Node) pingProxies() {
	defer n.wg.Done()
	var once sync.Once
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	for _, c := range n.proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Ping(pctx)
				pcancel()
				if err == nil {
					once.Do(func() { close(n.proxied) })
					cancel()
					return
				}
				if ctx.Err() != nil {
					return
				}
				n.log.Warn("signaling proxy not answering", "proxy", c.Name(), "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}()
	}
	wg.Wait()
}
