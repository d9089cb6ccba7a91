package tlslink

import "errors"

var (
	// ErrRejectedByPeer means the other side refused our certificate (or,
	// for a client, closed the link before confirming the handshake).
	ErrRejectedByPeer = errors.New("tlslink: peer rejected the handshake")

	// ErrNoCertificate means the peer presented no certificate.
	ErrNoCertificate = errors.New("tlslink: peer presented no certificate")

	// ErrProtocol means the peer does not speak ALPN protocol ALPN.
	ErrProtocol = errors.New("tlslink: peer does not speak " + ALPN)

	// ErrConfig means the Config is unusable (missing device or expected account).
	ErrConfig = errors.New("tlslink: invalid config")
)
