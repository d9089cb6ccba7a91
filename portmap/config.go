package portmap

import (
	"log/slog"
	"net/netip"
	"net/url"
	"time"
)

// Config configures a Mapper. The zero value (or nil) discovers a router
// with both protocols on the default route.
type Config struct {
	// Gateway is the router NAT-PMP asks. Default: the default route's
	// gateway.
	Gateway netip.Addr
	// UPnPLocation, if set, is the router's UPnP device description URL,
	// used instead of an SSDP search (a router whose location is known, or
	// tests). Default: search.
	UPnPLocation *url.URL
	// NoUPnP and NoNATPMP turn a protocol off. Default: both on.
	NoUPnP, NoNATPMP bool
	// Lease is how long a mapping is asked for; it is renewed at half of
	// it. Default: 1h.
	Lease time.Duration
	// Timeout bounds discovery by each protocol and each request to the
	// router. Default: 3s.
	Timeout time.Duration
	// Description names the mappings on the router. Default: "peerdrop".
	Description string
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Description == "" {
		cfg.Description = "peerdrop"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}
