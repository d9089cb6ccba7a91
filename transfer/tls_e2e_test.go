package transfer

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/tlslink"
)

// tlsPair returns the two ends of a tlslink between two new identities
// over loopback TCP.
func tlsPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	mk := func() (*identity.Account, *identity.Device) {
		a, _ := identity.NewAccount(nil)
		d, err := a.NewDevice(nil, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return a, d
	}
	aa, ad := mk()
	ba, bd := mk()
	c1, c2 := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var srv *tlslink.Link
	var srvErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv, srvErr = tlslink.Server(ctx, c2, &tlslink.Config{Device: bd, PeerAccount: aa.ID(), PeerDevice: ad.ID()})
	}()
	cli, err := tlslink.Client(ctx, c1, &tlslink.Config{Device: ad, PeerAccount: ba.ID(), PeerDevice: bd.ID()})
	wg.Wait()
	if err != nil || srvErr != nil {
		t.Fatal(err, srvErr)
	}
	return cli, srv
}

func TestOverTLSLink(t *testing.T) {
	dir := t.TempDir()
	src, data := writeRandom(t, t.TempDir(), "video.mp4", 3<<20)
	o := run(t, tlsPair, Source{Path: src}, fastCfg(), fastCfg(), acceptInto(dir))
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
	mustEqualFile(t, o.path, data)
}

func TestOverTLSLinkCancelThenResume(t *testing.T) {
	o, dir := cancelMidStream(t, tlsPair, true)
	wantCancel(t, o.sendErr, false, "stop please")
	wantCancel(t, o.recvErr, true, "stop please")
	partial := filepath.Join(dir, partialName(o.sender.Offer().ID))
	st, err := os.Stat(partial)
	if err != nil || st.Size() == 0 {
		t.Fatalf("partial: %v", err)
	}
	data, _ := os.ReadFile(o.sender.path)
	o2 := run(t, tlsPair, Source{Path: o.sender.path, ID: o.sender.Offer().ID}, fastCfg(), fastCfg(), acceptInto(dir))
	if o2.sendErr != nil || o2.recvErr != nil {
		t.Fatal(o2.sendErr, o2.recvErr)
	}
	if o2.sender.Status().Offset != st.Size() {
		t.Fatalf("resumed at %d, partial had %d", o2.sender.Status().Offset, st.Size())
	}
	mustEqualFile(t, o2.path, data)
}

// TestCancelBySenderBeforeAck: the receiver got everything but has not
// answered; the sender's cancel still ends both sides promptly.
func TestCancelBySenderBeforeAck(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "f", 1000)
	a, b := net_pipe(t)
	p := rawPeer{b}
	gotCancel := make(chan CancelCode, 1)
	sawEnd := make(chan struct{})
	go func() {
		c := newConn(nopCloser{b})
		readOffer(c)
		p.hello()
		p.frame(frameGo, appendGo(nil, 0))
		var buf []byte
		for {
			t, pl, err := c.readFrame(&buf)
			if err != nil {
				close(gotCancel)
				return
			}
			if t == frameEnd {
				close(sawEnd)
			}
			if t == frameCancel {
				code, _, _ := parseCancel(pl)
				gotCancel <- code
				b.Close()
				return
			}
		}
	}()
	s, err := NewSender(a, Source{Path: src}, fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	<-sawEnd
	s.Cancel("too slow")
	wantCancel(t, <-errc, false, "too slow")
	if code, ok := <-gotCancel; !ok || code != CancelByUser {
		t.Fatalf("receiver saw no CANCEL (code %v, %v)", code, ok)
	}
	if s.Status().State != StateCanceled {
		t.Fatal(s.Status())
	}
	var ce *CancelError
	if !errors.As(s.Status().Err, &ce) {
		t.Fatal(s.Status().Err)
	}
}
