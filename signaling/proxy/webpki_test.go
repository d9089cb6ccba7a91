package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestWebPKI: a proxy with a certificate from a CA is reached at an
// https:// address by clients that trust the CA, and refused by the
// others.
func TestWebPKI(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}

	s, err := NewServer(&ServerConfig{Backend: &signaling.MemoryTransport{}, Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	defer func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	trusting := testClient(t, "https://"+l.Addr().String(), &ClientConfig{RootCAs: roots})
	if err := trusting.Ping(ctx); err != nil {
		t.Fatalf("a client that trusts the CA: %v", err)
	}
	other := testClient(t, "https://"+l.Addr().String(), &ClientConfig{RootCAs: x509.NewCertPool()})
	if err := other.Ping(ctx); err == nil {
		t.Fatal("a client that does not trust the CA accepted the proxy")
	}
}
