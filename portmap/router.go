package portmap

import (
	"context"
	"net/netip"
	"time"
)

// router is a gateway that maps ports, by one protocol.
type router interface {
	// proto is "upnp" or "nat-pmp".
	proto() string
	// add maps external (0: any) to local for lease and returns the public
	// address and the lease granted.
	add(ctx context.Context, local netip.AddrPort, external uint16, lease time.Duration) (netip.AddrPort, time.Duration, error)
	// del removes the mapping of external to local.
	del(ctx context.Context, local netip.AddrPort, external uint16) error
}
