package portmap

import "errors"

var (
	// ErrDiscovering: no router is known yet; the port is mapped as soon
	// as one is found.
	ErrDiscovering = errors.New("portmap: still looking for a router")
	// ErrNoRouter: discovery found no router that maps ports (no UPnP IGD,
	// no NAT-PMP), or it was turned off.
	ErrNoRouter = errors.New("portmap: no router that maps ports")
	// ErrClosed: the Mapper was closed.
	ErrClosed = errors.New("portmap: closed")
	// ErrFamily: only IPv4 ports are mapped (UPnP IGD and NAT-PMP are
	// IPv4 protocols; IPv6 hosts are not behind a NAT).
	ErrFamily = errors.New("portmap: only IPv4 listeners are mapped")
)
