package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// natPMP is a router found by NAT-PMP (RFC 6886).
type natPMP struct {
	c       *natpmp.Client
	gateway netip.Addr
	ext     netip.Addr
}

// findNATPMP asks gateway for its external address.
func findNATPMP(ctx context.Context, gateway netip.Addr, timeout time.Duration) (*natPMP, error) {
	c := natpmp.NewClientWithTimeout(net.IP(gateway.AsSlice()), timeout)
	var res *natpmp.GetExternalAddressResult
	err := blocking(ctx, func() (err error) {
		res, err = c.GetExternalAddress()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nat-pmp %s: %w", gateway, err)
	}
	ext := netip.AddrFrom4(res.ExternalIPAddress)
	if !ext.IsValid() || ext.IsUnspecified() {
		return nil, fmt.Errorf("nat-pmp %s: no external address", gateway)
	}
	return &natPMP{c: c, gateway: gateway, ext: ext}, nil
}

func (r *natPMP) proto() string { return "nat-pmp" }

func (r *natPMP) add(ctx context.Context, local netip.AddrPort, external uint16, lease time.Duration) (netip.AddrPort, time.Duration, error) {
	var res *natpmp.AddPortMappingResult
	err := blocking(ctx, func() (err error) {
		res, err = r.c.AddPortMapping("tcp", int(local.Port()), int(external), int(lease/time.Second))
		return err
	})
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("nat-pmp %s: map %d: %w", r.gateway, local.Port(), err)
	}
	if res.MappedExternalPort == 0 || res.PortMappingLifetimeInSeconds == 0 {
		return netip.AddrPort{}, 0, fmt.Errorf("nat-pmp %s: map %d: refused", r.gateway, local.Port())
	}
	return netip.AddrPortFrom(r.ext, res.MappedExternalPort), time.Duration(res.PortMappingLifetimeInSeconds) * time.Second, nil
}

func (r *natPMP) del(ctx context.Context, local netip.AddrPort, _ uint16) error {
	return blocking(ctx, func() error {
		_, err := r.c.AddPortMapping("tcp", int(local.Port()), 0, 0) // RFC 6886 section 3.4: lifetime 0 deletes
		return err
	})
}

// blocking runs f, which takes no context but is bounded by the client's
// own timeout (Config.Timeout), unless ctx has already ended. It does not
// return before f, so no request outlives Close.
func blocking(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f()
}
