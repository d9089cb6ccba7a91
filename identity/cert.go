package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// Device certificates are X.509 v3 certificates with an Ed25519 subject key
// (the device key), signed with Ed25519 by the account key. They are kept
// small because signaling carries them inside DHT values of at most 1000
// bytes (a device certificate is about 300 bytes):
//
//   - Issuer and Subject are fixed short names; identities are keys, not names.
//   - The Authority Key Identifier holds the account's raw 32-byte public
//     key, so a verifier learns which account claims to have signed, and can
//     say "another account" rather than just "bad signature".
//   - An extension (OIDSealingKey) carries the device's X25519 sealing key,
//     so the account signature binds it to the device.
//   - Key usage: digital signature; extended key usage: TLS client and server.
const (
	// DefaultCertValidity is how long a new device certificate is valid.
	DefaultCertValidity = 5 * 365 * 24 * time.Hour
	// certBackdate tolerates clocks that run behind the signer's.
	certBackdate = time.Hour
	// MaxCertSize bounds a device certificate before it is parsed.
	MaxCertSize = 2048
)

// OIDSealingKey is the certificate extension holding the device's X25519
// sealing public key (an OCTET STRING of 32 bytes). The OID is a random
// arc under 2.25 (ITU-T X.667, no registration needed), kept below 2^31
// because Go's X.509 parser takes no larger arcs.
var OIDSealingKey = asn1.ObjectIdentifier{2, 25, 1693834723, 1}

var (
	issuerName  = pkix.Name{CommonName: "peerdrop account"}
	subjectName = pkix.Name{CommonName: "peerdrop device"}
)

// DeviceCert is a parsed and verified device certificate.
type DeviceCert struct {
	Raw        []byte // DER
	Account    AccountID
	Device     DeviceID
	SealingKey *ecdh.PublicKey // X25519
	NotBefore  time.Time
	NotAfter   time.Time
	X509       *x509.Certificate
}

// SigningKey returns the device's Ed25519 public key.
func (c *DeviceCert) SigningKey() ed25519.PublicKey { return c.Device.PublicKey() }

// SignDeviceCert signs a certificate for the device whose keys are
// signPub and sealPub, valid from now (backdated by an hour for clock skew)
// for validity (0 means DefaultCertValidity). It returns the DER bytes.
func (a *Account) SignDeviceCert(signPub ed25519.PublicKey, sealPub *ecdh.PublicKey, now time.Time, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		validity = DefaultCertValidity
	}
	if sealPub == nil || sealPub.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("identity: sealing key must be X25519")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, fmt.Errorf("identity: certificate serial: %w", err)
	}
	sealExt, err := asn1.Marshal(sealPub.Bytes())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subjectName,
		NotBefore:             now.Add(-certBackdate).UTC().Truncate(time.Second),
		NotAfter:              now.Add(validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		AuthorityKeyId:        a.id[:],
		ExtraExtensions:       []pkix.Extension{{Id: OIDSealingKey, Value: sealExt}},
	}
	parent := &x509.Certificate{Subject: issuerName, SubjectKeyId: a.id[:], PublicKey: a.key.Public()}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, signPub, a.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign device certificate: %w", err)
	}
	return der, nil
}

// ParseDeviceCert decodes a device certificate without deciding whether to
// trust it: it checks the structure and that the signature verifies under
// the account key named in the certificate, but not which account that is
// nor the validity period. Use VerifyDeviceCert to check against an
// expected account.
func ParseDeviceCert(der []byte) (*DeviceCert, error) {
	if len(der) > MaxCertSize {
		return nil, &CertError{Kind: CertMalformed, Detail: fmt.Sprintf("%d bytes, limit %d", len(der), MaxCertSize)}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &CertError{Kind: CertMalformed, Detail: err.Error()}
	}
	devPub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, &CertError{Kind: CertMalformed, Detail: "subject key is not Ed25519"}
	}
	if c.SignatureAlgorithm != x509.PureEd25519 {
		return nil, &CertError{Kind: CertMalformed, Detail: "signature algorithm is not Ed25519"}
	}
	if c.IsCA {
		return nil, &CertError{Kind: CertMalformed, Detail: "device certificate must not be a CA"}
	}
	var sealBytes []byte
	for _, ext := range c.Extensions {
		if ext.Id.Equal(OIDSealingKey) {
			rest, err := asn1.Unmarshal(ext.Value, &sealBytes)
			if err != nil || len(rest) != 0 {
				return nil, &CertError{Kind: CertMalformed, Detail: "bad sealing key extension"}
			}
		}
	}
	sealPub, err := ecdh.X25519().NewPublicKey(sealBytes)
	if err != nil {
		return nil, &CertError{Kind: CertMalformed, Detail: "missing or bad X25519 sealing key"}
	}
	dc := &DeviceCert{Raw: c.Raw, SealingKey: sealPub, NotBefore: c.NotBefore, NotAfter: c.NotAfter, X509: c}
	dc.Device, _ = DeviceIDFromKey(devPub)
	// Which account does the certificate claim? The raw account key is in
	// the Authority Key Identifier.
	if ed25519.Verify(devPub, c.RawTBSCertificate, c.Signature) {
		return nil, &CertError{Kind: CertSelfSigned, Detail: "device " + dc.Device.Short()}
	}
	if len(c.AuthorityKeyId) != ed25519.PublicKeySize {
		return nil, &CertError{Kind: CertBadChain, Detail: "no account key identifier"}
	}
	copy(dc.Account[:], c.AuthorityKeyId)
	if !ed25519.Verify(dc.Account.PublicKey(), c.RawTBSCertificate, c.Signature) {
		return nil, &CertError{Kind: CertBadChain, Detail: "signature does not verify under account " + dc.Account.Short()}
	}
	return dc, nil
}

// VerifyDeviceCert parses der and checks that it is a certificate of a
// device of the expected account, valid at now.
func VerifyDeviceCert(der []byte, account AccountID, now time.Time) (*DeviceCert, error) {
	c, err := ParseDeviceCert(der)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c.Account[:], account[:]) {
		return nil, &CertError{Kind: CertWrongAccount, Detail: fmt.Sprintf("signed by account %s, expected %s", c.Account.Short(), account.Short())}
	}
	if now.After(c.NotAfter) {
		return nil, &CertError{Kind: CertExpired, Detail: "expired " + c.NotAfter.Format(time.RFC3339)}
	}
	if now.Before(c.NotBefore) {
		return nil, &CertError{Kind: CertNotYetValid, Detail: "valid from " + c.NotBefore.Format(time.RFC3339)}
	}
	return c, nil
}

// VerifyDeviceCertFor is VerifyDeviceCert that also requires the
// certificate to be of the expected device.
func VerifyDeviceCertFor(der []byte, account AccountID, device DeviceID, now time.Time) (*DeviceCert, error) {
	c, err := VerifyDeviceCert(der, account, now)
	if err != nil {
		return nil, err
	}
	if c.Device != device {
		return nil, &CertError{Kind: CertWrongDevice, Detail: fmt.Sprintf("device %s, expected %s", c.Device.Short(), device.Short())}
	}
	return c, nil
}
