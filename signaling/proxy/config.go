package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// ClientConfig configures a Client. The zero value (or nil) is usable.
type ClientConfig struct {
	// DialContext dials the proxy's TCP connection (Android apps protect
	// the socket from their VPN here). Default: a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs checks https:// addresses. Default: the system's roots.
	RootCAs *x509.CertPool
	// Logger receives logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of c (nil: the zero ClientConfig) with
// every unset field at its documented default.
func (c *ClientConfig) withDefaults() ClientConfig {
	var cfg ClientConfig
	if c != nil {
		cfg = *c
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialContext == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		cfg.DialContext = d.DialContext
	}
	return cfg
}

// ServerConfig configures a Server. Zero fields take the defaults given.
type ServerConfig struct {
	// Backend does the operations: normally a *dht.Node with Serve set.
	// If it is a signaling.Listener, listen streams are notified of its
	// updates. Required.
	Backend signaling.Transport
	// Certificate is the TLS certificate: the operator's (web PKI) or
	// SelfSigned's. Required.
	Certificate tls.Certificate

	// MaxConns bounds TLS connections in all, MaxConnsPerIP from one
	// client (an IPv4 address or an IPv6 /64). Defaults: 8192, 64.
	MaxConns, MaxConnsPerIP int
	// MaxStreams bounds listen streams in all, MaxStreamsPerIP from one
	// client, MaxTargets the targets of one stream, and MaxListened the
	// distinct targets of all streams. Defaults: 4096, 32, 256, 65536.
	MaxStreams, MaxStreamsPerIP, MaxTargets, MaxListened int
	// RequestRate and RequestBurst bound one client's requests (puts,
	// gets, listens); a client is an IP address, which many devices behind
	// one NAT share, and a device waiting for an answer polls it ten times
	// a second. Defaults: 100/s, 500.
	RequestRate  float64
	RequestBurst int
	// TargetPutRate and TargetPutBurst bound the puts at one target from
	// all clients, each of which the DHT node forwards to K nodes (a
	// mailbox slot changes a few times per exchange, and a pair may
	// exchange several times a second). Defaults: 20/s, 60.
	TargetPutRate  float64
	TargetPutBurst int
	// OpTimeout bounds one put or get on the Backend. Default: 15s.
	OpTimeout time.Duration
	// ReadTimeout bounds the time a client may take to finish the TLS
	// handshake and send a request (slow clients are closed). Default: 15s.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write to a listen stream: a client that
	// does not read is closed. Default: 10s.
	WriteTimeout time.Duration
	// KeepAlive is how often an idle stream sends an empty line.
	// Default: 25s.
	KeepAlive time.Duration
	// Logger receives logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of c (nil: the zero ServerConfig) with
// every unset field at its documented default, or an error naming a
// required field that is missing.
func (c *ServerConfig) withDefaults() (ServerConfig, error) {
	var out ServerConfig
	if c != nil {
		out = *c
	}
	if out.Backend == nil {
		return out, errors.New("proxy: ServerConfig.Backend is required")
	}
	if len(out.Certificate.Certificate) == 0 {
		return out, errors.New("proxy: ServerConfig.Certificate is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&out.MaxConns, 8192)
	def(&out.MaxConnsPerIP, 64)
	def(&out.MaxStreams, 4096)
	def(&out.MaxStreamsPerIP, 32)
	def(&out.MaxTargets, 256)
	def(&out.MaxListened, 1<<16)
	def(&out.RequestBurst, 500)
	def(&out.TargetPutBurst, 60)
	if out.RequestRate <= 0 {
		out.RequestRate = 100
	}
	if out.TargetPutRate <= 0 {
		out.TargetPutRate = 20
	}
	if out.OpTimeout <= 0 {
		out.OpTimeout = 15 * time.Second
	}
	if out.ReadTimeout <= 0 {
		out.ReadTimeout = 15 * time.Second
	}
	if out.WriteTimeout <= 0 {
		out.WriteTimeout = 10 * time.Second
	}
	if out.KeepAlive <= 0 {
		out.KeepAlive = 25 * time.Second
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out, nil
}
