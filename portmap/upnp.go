package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
)

// igdClient is what the WANIPConnection1/2 and WANPPPConnection1 clients
// of goupnp have in common.
type igdClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseDuration uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	LocalAddr() net.IP
}

// upnp is a router found by UPnP IGD.
type upnp struct {
	c    igdClient
	desc string
	ext  netip.Addr
}

// findUPnP looks for an internet gateway device: at loc, or by an SSDP
// search (about 2 s).
func findUPnP(ctx context.Context, loc *url.URL, desc string) (*upnp, error) {
	var clients []igdClient
	var errs []error
	var mu sync.Mutex
	add := func(cs []igdClient, err error) {
		mu.Lock()
		defer mu.Unlock()
		clients = append(clients, cs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if loc != nil {
		c2, err := internetgateway2.NewWANIPConnection2ClientsByURLCtx(ctx, loc)
		add(asIGD(c2), err)
		c1, err := internetgateway2.NewWANIPConnection1ClientsByURLCtx(ctx, loc)
		add(asIGD(c1), err)
		p1, err := internetgateway2.NewWANPPPConnection1ClientsByURLCtx(ctx, loc)
		add(asIGD(p1), err)
	} else {
		// The three services, searched for in parallel (about 2 s each).
		var wg sync.WaitGroup
		search := func(f func() ([]igdClient, error)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				add(f())
			}()
		}
		search(func() ([]igdClient, error) {
			c, perDev, err := internetgateway2.NewWANIPConnection2ClientsCtx(ctx)
			return asIGD(c), errors.Join(append(perDev, err)...)
		})
		search(func() ([]igdClient, error) {
			c, perDev, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx)
			return asIGD(c), errors.Join(append(perDev, err)...)
		})
		search(func() ([]igdClient, error) {
			c, perDev, err := internetgateway2.NewWANPPPConnection1ClientsCtx(ctx)
			return asIGD(c), errors.Join(append(perDev, err)...)
		})
		wg.Wait()
	}
	for _, c := range clients {
		s, err := c.GetExternalIPAddressCtx(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ext, err := netip.ParseAddr(s)
		if err != nil || !ext.Is4() || ext.IsUnspecified() {
			errs = append(errs, fmt.Errorf("external address %q", s))
			continue
		}
		return &upnp{c: c, desc: desc, ext: ext}, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("upnp: no internet gateway device")
	}
	return nil, fmt.Errorf("upnp: %w", errors.Join(errs...))
}

// asIGD converts one service's clients.
func asIGD[T igdClient](cs []T) []igdClient {
	out := make([]igdClient, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

func (r *upnp) proto() string { return "upnp" }

func (r *upnp) add(ctx context.Context, local netip.AddrPort, external uint16, lease time.Duration) (netip.AddrPort, time.Duration, error) {
	if external == 0 {
		external = local.Port()
	}
	client := local.Addr()
	if client.IsUnspecified() {
		la, ok := netip.AddrFromSlice(r.c.LocalAddr())
		if !ok {
			return netip.AddrPort{}, 0, errors.New("upnp: no local address towards the router")
		}
		client = la.Unmap()
	}
	secs := uint32(lease / time.Second)
	err := r.c.AddPortMappingCtx(ctx, "", external, "TCP", local.Port(), client.String(), true, r.desc, secs)
	if err != nil {
		// Some routers take only permanent mappings (error 725,
		// OnlyPermanentLeasesSupported): ask for one, deleted on Close.
		secs = 0
		if err2 := r.c.AddPortMappingCtx(ctx, "", external, "TCP", local.Port(), client.String(), true, r.desc, 0); err2 != nil {
			return netip.AddrPort{}, 0, fmt.Errorf("upnp: map %d: %w", local.Port(), err)
		}
	}
	granted := time.Duration(secs) * time.Second
	if secs == 0 {
		granted = lease // renewed as if leased, which refreshes it harmlessly
	}
	return netip.AddrPortFrom(r.ext, external), granted, nil
}

func (r *upnp) del(ctx context.Context, _ netip.AddrPort, external uint16) error {
	return r.c.DeletePortMappingCtx(ctx, "", external, "TCP")
}
