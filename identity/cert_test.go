package identity

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newTestDevice(t testing.TB) (*Account, *Device) {
	t.Helper()
	acct, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := acct.NewDevice(nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	return acct, dev
}

func wantCertErr(t *testing.T, err error, kind CertErrorKind) {
	t.Helper()
	var ce *CertError
	if !errors.As(err, &ce) || ce.Kind != kind {
		t.Fatalf("got error %v, want kind %v", err, kind)
	}
	if !errors.Is(err, &CertError{Kind: kind}) {
		t.Fatalf("errors.Is does not match kind %v", kind)
	}
}

func TestDeviceCertValid(t *testing.T) {
	acct, dev := newTestDevice(t)
	c, err := VerifyDeviceCertFor(dev.Cert().Raw, acct.ID(), dev.ID(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account != acct.ID() || c.Device != dev.ID() {
		t.Fatal("wrong IDs")
	}
	if !c.SealingKey.Equal(dev.SealingKey().PublicKey()) {
		t.Fatal("sealing key not bound")
	}
	if n := len(dev.Cert().Raw); n > 400 {
		t.Fatalf("device certificate is %d bytes; signaling needs it small", n)
	}
	t.Logf("device certificate: %d bytes", len(dev.Cert().Raw))
}

func TestDeviceCertRejections(t *testing.T) {
	acct, dev := newTestDevice(t)
	other, otherDev := newTestDevice(t)

	wantCertErr(t, func() error { _, e := VerifyDeviceCert(otherDev.Cert().Raw, acct.ID(), testNow); return e }(), CertWrongAccount)
	wantCertErr(t, func() error {
		_, e := VerifyDeviceCertFor(dev.Cert().Raw, acct.ID(), otherDev.ID(), testNow)
		return e
	}(), CertWrongDevice)
	wantCertErr(t, func() error {
		_, e := VerifyDeviceCert(dev.Cert().Raw, acct.ID(), testNow.Add(DefaultCertValidity+time.Hour))
		return e
	}(), CertExpired)
	wantCertErr(t, func() error { _, e := VerifyDeviceCert(dev.Cert().Raw, acct.ID(), testNow.Add(-2*time.Hour)); return e }(), CertNotYetValid)

	// Tampered: flip a bit in the signature.
	bad := append([]byte(nil), dev.Cert().Raw...)
	bad[len(bad)-5] ^= 1
	wantCertErr(t, func() error { _, e := VerifyDeviceCert(bad, acct.ID(), testNow); return e }(), CertBadChain)

	// Claims acct as issuer but was signed by another account.
	forged, err := other.SignDeviceCert(dev.SigningKey().Public().(ed25519.PublicKey), dev.SealingKey().PublicKey(), testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	fc, _ := x509.ParseCertificate(forged)
	tmpl := fc
	tmpl.AuthorityKeyId = acct.ID().PublicKey()
	for _, e := range fc.Extensions {
		if e.Id.Equal(OIDSealingKey) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
		}
	}
	forged2, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{Subject: issuerName}, dev.SigningKey().Public(), other.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	wantCertErr(t, func() error { _, e := VerifyDeviceCert(forged2, acct.ID(), testNow); return e }(), CertBadChain)

	// Self-signed by the device key.
	selfSigned, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, dev.SigningKey().Public(), dev.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	wantCertErr(t, func() error { _, e := VerifyDeviceCert(selfSigned, acct.ID(), testNow); return e }(), CertSelfSigned)

	// Not Ed25519.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}}, &ek.PublicKey, ek)
	wantCertErr(t, func() error { _, e := VerifyDeviceCert(ecCert, acct.ID(), testNow); return e }(), CertMalformed)

	// Garbage and oversize.
	wantCertErr(t, func() error { _, e := ParseDeviceCert([]byte("garbage")); return e }(), CertMalformed)
	wantCertErr(t, func() error { _, e := ParseDeviceCert(make([]byte, MaxCertSize+1)); return e }(), CertMalformed)
}

func TestDeviceCertMissingSealingKey(t *testing.T) {
	acct, dev := newTestDevice(t)
	c := dev.Cert().X509
	tmpl := *c
	tmpl.ExtraExtensions = nil
	var exts []pkix.Extension
	for _, e := range c.Extensions {
		if !e.Id.Equal(OIDSealingKey) {
			exts = append(exts, e)
		}
	}
	tmpl.Extensions = exts
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &x509.Certificate{Subject: issuerName}, dev.SigningKey().Public(), acct.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	wantCertErr(t, func() error { _, e := ParseDeviceCert(der); return e }(), CertMalformed)
}

func TestRenew(t *testing.T) {
	acct, dev := newTestDevice(t)
	id := dev.ID()
	later := testNow.Add(DefaultCertValidity + 24*time.Hour)
	if err := dev.Renew(acct, later, 0); err != nil {
		t.Fatal(err)
	}
	if dev.ID() != id {
		t.Fatal("renew changed the device ID")
	}
	if _, err := VerifyDeviceCertFor(dev.Cert().Raw, acct.ID(), id, later); err != nil {
		t.Fatal(err)
	}
	other, _ := newTestDevice(t)
	if err := dev.Renew(other, later, 0); err == nil {
		t.Fatal("renewed by a foreign account")
	}
}

func TestSealingKeyMismatch(t *testing.T) {
	acct, dev := newTestDevice(t)
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := newDevice(dev.SigningKey(), k, dev.Cert().Raw, acct.ID(), testNow); err == nil {
		t.Fatal("accepted a certificate that does not carry the sealing key")
	}
}

func FuzzParseDeviceCert(f *testing.F) {
	_, dev := newTestDevice(f)
	f.Add(dev.Cert().Raw)
	seeds, _ := filepath.Glob("testdata/certs/*.der")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseDeviceCert(der)
		if err != nil {
			var ce *CertError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *CertError: %v", err)
			}
			return
		}
		// Accepted: it must really be signed by the account it names.
		if !ed25519.Verify(c.Account.PublicKey(), c.X509.RawTBSCertificate, c.X509.Signature) {
			t.Fatal("accepted a certificate whose signature does not verify")
		}
	})
}
