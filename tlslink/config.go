package tlslink

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// ALPN is the application protocol and version negotiated on every link
// by default: one transfer, then the link closes.
const ALPN = "peerdrop/1"

// ALPNMux is the file protocol of ALPN run in streams multiplexed on the
// link (yamux), several transfers in either direction, one per stream.
const ALPNMux = "peerdrop/2"

// Config says who we are and whom we expect.
type Config struct {
	// Device is this device's identity. Required.
	Device *identity.Device

	// PeerAccount is the account the peer must belong to. Required.
	PeerAccount identity.AccountID

	// PeerDevice is the device the peer must be. The zero value accepts
	// any device of PeerAccount (for a server that learns the device only
	// from the handshake); signaling always knows it, so set it.
	PeerDevice identity.DeviceID

	// Now returns the time used to check certificate validity. Nil means
	// time.Now.
	Now func() time.Time

	// Protocols are the ALPN protocols this side speaks, most preferred
	// first (ALPN, ALPNMux); the server picks the first of its own that
	// the client offers (Link.Protocol). Default: ALPN alone.
	Protocols []string

	// Logger receives debug logs. Nil means discard.
	Logger *slog.Logger

	// certificate overrides the presented certificate (tests only).
	certificate *tls.Certificate
}

// withDefaults returns a copy of c with every unset field at its
// documented default, or an error (ErrConfig) naming a required field that
// is missing; a nil c is such an error.
func (c *Config) withDefaults() (*Config, error) {
	if c == nil || c.Device == nil {
		return nil, fmt.Errorf("%w: no device", ErrConfig)
	}
	if c.PeerAccount.IsZero() {
		return nil, fmt.Errorf("%w: no expected peer account", ErrConfig)
	}
	d := *c
	if d.Now == nil {
		d.Now = time.Now
	}
	if len(d.Protocols) == 0 {
		d.Protocols = []string{ALPN}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &d, nil
}
