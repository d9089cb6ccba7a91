package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scheme is the scheme of a pinned proxy address.
const Scheme = "peerdrop-proxy"

// Addr is a parsed proxy address.
type Addr struct {
	HostPort string // host:port to dial
	Pin      string // base64url SHA-256 of the certificate's public key; "" for web PKI
}

// String gives the address back in the form ParseAddr reads.
func (a Addr) String() string {
	if a.Pin == "" {
		return "https://" + a.HostPort
	}
	return Scheme + "://" + a.HostPort + "#" + a.Pin
}

// ParseAddr reads a proxy address: peerdrop-proxy://HOST:PORT#PIN (a
// self-signed certificate, pinned), https://HOST[:PORT] (a certificate
// checked against the system's roots; port 443 by default) or HOST:PORT
// (the same as https://).
func ParseAddr(s string) (Addr, error) {
	bad := func(why string) (Addr, error) {
		return Addr{}, fmt.Errorf("proxy address %q: %s (want %s://HOST:PORT#PIN or https://HOST:PORT)", s, why, Scheme)
	}
	rest, pinned := strings.CutPrefix(s, Scheme+"://")
	if !pinned {
		rest = strings.TrimPrefix(s, "https://")
	}
	hostport, pin, hasPin := strings.Cut(rest, "#")
	hostport = strings.TrimSuffix(hostport, "/")
	if pinned != hasPin {
		if pinned {
			return bad("no #PIN")
		}
		return bad("a #PIN needs the " + Scheme + ":// scheme")
	}
	if pinned {
		if b, err := base64.RawURLEncoding.DecodeString(pin); err != nil || len(b) != sha256.Size {
			return bad("the pin is not a base64url SHA-256")
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if pinned || strings.Contains(hostport, "/") {
			return bad("want HOST:PORT")
		}
		host, port = strings.Trim(hostport, "[]"), "443"
	}
	if !validHost(host) {
		return bad("bad host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return bad("bad port")
	}
	return Addr{HostPort: net.JoinHostPort(host, port), Pin: pin}, nil
}

// validHost accepts an IP address or a DNS name. Brackets are refused
// anywhere: netip accepts them inside an IPv6 zone ("::%]0"), which then
// does not survive bracketing in an address.
func validHost(h string) bool {
	if strings.ContainsAny(h, "[]") {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// Pin returns the pin of a certificate: the base64url SHA-256 of its
// SubjectPublicKeyInfo (it stays the same when the certificate is renewed
// with the same key).
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SelfSigned loads the proxy's key and self-signed certificate from path
// (one PEM file, 0600), creating them on first use, and returns them with
// their pin. The pin stays the same across restarts: clients keep the
// address.
func SelfSigned(path string) (tls.Certificate, string, error) {
	if b, err := os.ReadFile(path); err == nil {
		cert, err := tls.X509KeyPair(b, b)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("proxy certificate %s: %w", path, err)
		}
		return cert, Pin(cert.Leaf), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "peerdrop signaling proxy"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(30, 0, 0), // the pin is what clients check
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return tls.Certificate{}, "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pemBytes, 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return tls.Certificate{}, "", err
	}
	cert, err := tls.X509KeyPair(pemBytes, pemBytes)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return cert, Pin(cert.Leaf), nil
}
