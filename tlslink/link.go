package tlslink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// confirmByte is what the server writes once it has accepted the client.
const confirmByte = 0x01

// Link is an authenticated TLS 1.3 connection to a known peer device.
type Link struct {
	*tls.Conn
	peer *identity.DeviceCert
}

// PeerAccount returns the authenticated account of the peer.
func (l *Link) PeerAccount() identity.AccountID { return l.peer.Account }

// PeerDevice returns the authenticated device of the peer.
func (l *Link) PeerDevice() identity.DeviceID { return l.peer.Device }

// Protocol is the negotiated ALPN protocol (one of Config.Protocols).
func (l *Link) Protocol() string { return l.ConnectionState().NegotiatedProtocol }

// PeerCert returns the peer's verified device certificate.
func (l *Link) PeerCert() *identity.DeviceCert { return l.peer }

// Client runs the client side of the handshake over conn. On error conn is
// closed.
func Client(ctx context.Context, conn net.Conn, cfg *Config) (*Link, error) {
	return handshake(ctx, conn, cfg, true)
}

// Server runs the server side of the handshake over conn. On error conn is
// closed.
func Server(ctx context.Context, conn net.Conn, cfg *Config) (*Link, error) {
	return handshake(ctx, conn, cfg, false)
}

func handshake(ctx context.Context, conn net.Conn, cfg *Config, client bool) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var peer *identity.DeviceCert
	tc := tlsConfig(cfg, &peer)
	var tconn *tls.Conn
	if client {
		tconn = tls.Client(conn, tc)
	} else {
		tconn = tls.Server(conn, tc)
	}
	// ctx bounds the handshake and the confirmation that follows it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = tconn.HandshakeContext(ctx)
	if err == nil {
		if client {
			err = readConfirm(tconn)
		} else {
			_, err = tconn.Write([]byte{confirmByte})
		}
	}
	if !stop() || ctx.Err() != nil {
		conn.Close()
		return nil, fmt.Errorf("tlslink: handshake: %w", context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, classify(err)
	}
	conn.SetDeadline(time.Time{})
	cfg.Logger.Debug("tlslink: link up", "client", client, "peer_account", peer.Account.Short(), "peer_device", peer.Device.Short(),
		"cipher", tls.CipherSuiteName(tconn.ConnectionState().CipherSuite))
	return &Link{Conn: tconn, peer: peer}, nil
}

func readConfirm(c *tls.Conn) error {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrRejectedByPeer
		}
		return err
	}
	if b[0] != confirmByte {
		return fmt.Errorf("%w: bad confirmation byte %#x", ErrProtocol, b[0])
	}
	return nil
}

// classify turns handshake errors into the package's documented ones.
func classify(err error) error {
	var ce *identity.CertError
	switch {
	case errors.As(err, &ce), errors.Is(err, ErrNoCertificate), errors.Is(err, ErrProtocol), errors.Is(err, ErrRejectedByPeer):
		return fmt.Errorf("tlslink: handshake: %w", err)
	}
	// crypto/tls reports an alert received from the peer as a *net.OpError
	// with Op "remote error".
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return fmt.Errorf("%w (%v)", ErrRejectedByPeer, err)
	}
	return fmt.Errorf("tlslink: handshake: %w", err)
}

func tlsConfig(cfg *Config, peer **identity.DeviceCert) *tls.Config {
	cert := cfg.Device.TLSCertificate()
	if cfg.certificate != nil {
		cert = *cfg.certificate
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		InsecureSkipVerify:     true, // replaced by VerifyConnection: pinned to the expected identity
		SessionTicketsDisabled: true,
		NextProtos:             cfg.Protocols,
		ServerName:             "peerdrop",
		VerifyConnection: func(cs tls.ConnectionState) error {
			if !slices.Contains(cfg.Protocols, cs.NegotiatedProtocol) {
				return fmt.Errorf("%w (offered %q)", ErrProtocol, cs.NegotiatedProtocol)
			}
			if len(cs.PeerCertificates) == 0 {
				return ErrNoCertificate
			}
			var c *identity.DeviceCert
			var err error
			raw := cs.PeerCertificates[0].Raw
			if cfg.PeerDevice.IsZero() {
				c, err = identity.VerifyDeviceCert(raw, cfg.PeerAccount, cfg.Now())
			} else {
				c, err = identity.VerifyDeviceCertFor(raw, cfg.PeerAccount, cfg.PeerDevice, cfg.Now())
			}
			if err != nil {
				return err
			}
			*peer = c
			return nil
		},
	}
}
