package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"time"
)

// Device is this device's private identity: its Ed25519 signing key (the
// key of its TLS certificate), its X25519 sealing key (signaling messages
// are encrypted to it) and its certificate, signed by the account key.
type Device struct {
	Name    string    // a label chosen by the user, e.g. "laptop"
	Created time.Time // when this device joined the account

	signKey ed25519.PrivateKey
	sealKey *ecdh.PrivateKey
	cert    *DeviceCert
}

func newDevice(signKey ed25519.PrivateKey, sealKey *ecdh.PrivateKey, der []byte, account AccountID, now time.Time) (*Device, error) {
	cert, err := VerifyDeviceCert(der, account, now)
	if err != nil {
		return nil, err
	}
	if !cert.SigningKey().Equal(signKey.Public()) || !cert.SealingKey.Equal(sealKey.PublicKey()) {
		return nil, &CertError{Kind: CertKeyMismatch, Detail: "device certificate does not carry this device's keys"}
	}
	return &Device{signKey: signKey, sealKey: sealKey, cert: cert}, nil
}

// ID returns the device ID (its signing public key).
func (d *Device) ID() DeviceID { return d.cert.Device }

// Account returns the ID of the account the device belongs to.
func (d *Device) Account() AccountID { return d.cert.Account }

// Cert returns the device certificate.
func (d *Device) Cert() *DeviceCert { return d.cert }

// SigningKey returns the device's Ed25519 private key.
func (d *Device) SigningKey() ed25519.PrivateKey { return d.signKey }

// SealingKey returns the device's X25519 private key.
func (d *Device) SealingKey() *ecdh.PrivateKey { return d.sealKey }

// Sign signs msg with the device key.
func (d *Device) Sign(msg []byte) []byte { return ed25519.Sign(d.signKey, msg) }

// TLSCertificate returns the device certificate and key for crypto/tls.
func (d *Device) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{d.cert.Raw},
		PrivateKey:  d.signKey,
		Leaf:        d.cert.X509,
	}
}

// Renew replaces the device certificate with a new one signed by acct,
// valid from now for validity (0 means DefaultCertValidity), keeping the
// device's keys and so its ID.
func (d *Device) Renew(acct *Account, now time.Time, validity time.Duration) error {
	if acct.ID() != d.Account() {
		return fmt.Errorf("identity: renew: %w", &CertError{Kind: CertWrongAccount, Detail: "account " + acct.ID().Short() + " does not own this device"})
	}
	der, err := acct.SignDeviceCert(d.signKey.Public().(ed25519.PublicKey), d.sealKey.PublicKey(), now, validity)
	if err != nil {
		return err
	}
	nd, err := newDevice(d.signKey, d.sealKey, der, acct.ID(), now)
	if err != nil {
		return err
	}
	d.cert = nd.cert
	return nil
}
