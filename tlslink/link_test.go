package tlslink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/internal/testnet"

	"github.com/peerdrop/peerdrop/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type party struct {
	acct *identity.Account
	dev  *identity.Device
}

func newParty(t testing.TB) party {
	t.Helper()
	a, err := identity.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.NewDevice(nil, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return party{a, d}
}

func (p party) expects(q party) *Config {
	return &Config{Device: p.dev, PeerAccount: q.acct.ID(), PeerDevice: q.dev.ID()}
}

// tcpPair returns two ends of a loopback TCP connection.
var tcpPair = testnet.TCPPair

type result struct {
	link *Link
	err  error
}

func connect(t *testing.T, ccfg, scfg *Config) (result, result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, c2 := tcpPair(t)
	sch := make(chan result, 1)
	go func() {
		l, err := Server(ctx, c2, scfg)
		sch <- result{l, err}
	}()
	l, err := Client(ctx, c1, ccfg)
	cr := result{l, err}
	sr := <-sch
	t.Cleanup(func() {
		for _, r := range []result{cr, sr} {
			if r.link != nil {
				r.link.Close()
			}
		}
	})
	return cr, sr
}

func TestLinkOK(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	cr, sr := connect(t, alice.expects(bob), bob.expects(alice))
	if cr.err != nil || sr.err != nil {
		t.Fatalf("client %v, server %v", cr.err, sr.err)
	}
	if cr.link.PeerDevice() != bob.dev.ID() || cr.link.PeerAccount() != bob.acct.ID() {
		t.Fatal("client sees wrong peer")
	}
	if sr.link.PeerDevice() != alice.dev.ID() || sr.link.PeerAccount() != alice.acct.ID() {
		t.Fatal("server sees wrong peer")
	}
	st := cr.link.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != ALPN || st.DidResume {
		t.Fatalf("state %+v", st)
	}
	// Data flows both ways and the confirmation byte is not visible.
	go cr.link.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := sr.link.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
}

func TestLinkAnyDeviceOfAccount(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	scfg := bob.expects(alice)
	scfg.PeerDevice = identity.DeviceID{}
	cr, sr := connect(t, alice.expects(bob), scfg)
	if cr.err != nil || sr.err != nil {
		t.Fatalf("client %v, server %v", cr.err, sr.err)
	}
	if sr.link.PeerDevice() != alice.dev.ID() {
		t.Fatal("wrong device")
	}
}

func wantKind(t *testing.T, err error, kind identity.CertErrorKind) {
	t.Helper()
	if !errors.Is(err, &identity.CertError{Kind: kind}) {
		t.Fatalf("got %v, want %v", err, kind)
	}
}

func TestLinkRejections(t *testing.T) {
	alice, bob, mallory := newParty(t), newParty(t), newParty(t)
	bob2dev, _ := bob.acct.NewDevice(nil, time.Now(), 0)
	bob2 := party{bob.acct, bob2dev}

	t.Run("server is of another account", func(t *testing.T) {
		cr, sr := connect(t, alice.expects(bob), mallory.expects(alice))
		wantKind(t, cr.err, identity.CertWrongAccount)
		if !errors.Is(sr.err, ErrRejectedByPeer) {
			t.Fatalf("server: %v", sr.err)
		}
	})
	t.Run("client is of another account", func(t *testing.T) {
		cr, sr := connect(t, mallory.expects(bob), bob.expects(alice))
		wantKind(t, sr.err, identity.CertWrongAccount)
		if !errors.Is(cr.err, ErrRejectedByPeer) {
			t.Fatalf("client: %v", cr.err)
		}
	})
	t.Run("other device of the right account", func(t *testing.T) {
		cr, sr := connect(t, alice.expects(bob), bob2.expects(alice))
		wantKind(t, cr.err, identity.CertWrongDevice)
		if sr.err == nil {
			t.Fatal("server accepted")
		}
	})
	t.Run("expired", func(t *testing.T) {
		ccfg := alice.expects(bob)
		ccfg.Now = func() time.Time { return time.Now().Add(identity.DefaultCertValidity + time.Hour) }
		cr, sr := connect(t, ccfg, bob.expects(alice))
		wantKind(t, cr.err, identity.CertExpired)
		if sr.err == nil {
			t.Fatal("server accepted")
		}
	})
	t.Run("self-signed", func(t *testing.T) {
		scfg := bob.expects(alice)
		c := selfSigned(t, bob.dev)
		scfg.certificate = &c
		cr, sr := connect(t, alice.expects(bob), scfg)
		wantKind(t, cr.err, identity.CertSelfSigned)
		if sr.err == nil {
			t.Fatal("server accepted")
		}
	})
	t.Run("signed by another account, claiming the right one", func(t *testing.T) {
		scfg := bob.expects(alice)
		c := forged(t, bob.dev, bob.acct.ID(), mallory.acct)
		scfg.certificate = &c
		cr, _ := connect(t, alice.expects(bob), scfg)
		wantKind(t, cr.err, identity.CertBadChain)
	})
}

// selfSigned returns the device's certificate re-signed by the device key.
func selfSigned(t *testing.T, d *identity.Device) tls.Certificate {
	tmpl := *d.Cert().X509
	tmpl.ExtraExtensions = sealingExt(d)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, d.SigningKey().Public(), d.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: d.SigningKey()}
}

// sealingExt returns the device certificate's sealing-key extension, which
// x509.CreateCertificate does not copy from a parsed template by itself.
func sealingExt(d *identity.Device) []pkix.Extension {
	for _, e := range d.Cert().X509.Extensions {
		if e.Id.Equal(identity.OIDSealingKey) {
			return []pkix.Extension{e}
		}
	}
	return nil
}

// forged returns a certificate naming claimed as the issuing account but
// signed by signer.
func forged(t *testing.T, d *identity.Device, claimed identity.AccountID, signer *identity.Account) tls.Certificate {
	tmpl := *d.Cert().X509
	tmpl.AuthorityKeyId = claimed.PublicKey()
	tmpl.ExtraExtensions = sealingExt(d)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &x509.Certificate{Subject: tmpl.Issuer}, d.SigningKey().Public().(ed25519.PublicKey), signer.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: d.SigningKey()}
}

func TestLinkWrongALPN(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	c1, c2 := tcpPair(t)
	defer c1.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Server(context.Background(), c2, bob.expects(alice))
		done <- err
	}()
	tc := tls.Client(c1, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"other/1"}, Certificates: []tls.Certificate{alice.dev.TLSCertificate()}})
	tc.Handshake()
	if err := <-done; err == nil {
		t.Fatal("server accepted a client without our ALPN")
	}
}

func TestLinkHandshakeBoundedByContext(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	c1, c2 := tcpPair(t)
	defer c2.Close() // the peer never answers
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Client(ctx, c1, alice.expects(bob))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestLinkGarbagePeer(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	c1, c2 := tcpPair(t)
	go func() {
		c2.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		c2.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Server(ctx, c1, bob.expects(alice)); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestConfigValidation(t *testing.T) {
	c1, c2 := tcpPair(t)
	defer c2.Close()
	if _, err := Client(context.Background(), c1, &Config{}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
}

// TestLinkProtocols: the server picks the first of its protocols that
// the client offers; with none in common the handshake fails.
func TestLinkProtocols(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	for _, c := range []struct {
		client, server []string
		want           string
	}{
		{[]string{ALPNMux, ALPN}, []string{ALPNMux, ALPN}, ALPNMux},
		{[]string{ALPNMux, ALPN}, nil, ALPN},
		{nil, []string{ALPNMux, ALPN}, ALPN},
		{[]string{ALPNMux}, []string{ALPN}, ""},
	} {
		cc, sc := alice.expects(bob), bob.expects(alice)
		cc.Protocols, sc.Protocols = c.client, c.server
		cr, sr := connect(t, cc, sc)
		if c.want == "" {
			if cr.err == nil || sr.err == nil {
				t.Fatalf("%v / %v: connected", c.client, c.server)
			}
			continue
		}
		if cr.err != nil || sr.err != nil || cr.link.Protocol() != c.want || sr.link.Protocol() != c.want {
			t.Fatalf("%v / %v: %v %v", c.client, c.server, cr.err, sr.err)
		}
	}
}
