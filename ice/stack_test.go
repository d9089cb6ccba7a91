package ice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/turnserver"
	"github.com/peerdrop/peerdrop/tlslink"
	"github.com/peerdrop/peerdrop/transfer"
)

// TestStackOverRelay runs the layers above ice on a relayed link through a
// real coturn: mutually authenticated TLS 1.3, then a 16 MiB file with the
// transfer protocol, verified end to end (coturn resets connections after a
// half-close, so this also shows the protocol never relies on one).
func TestStackOverRelay(t *testing.T) {
	ts := turnserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	loop := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	relayCfg := &ice.Config{ListenAddrs: loop, Mode: ice.ModeRelayOnly,
		Servers: []ice.Server{{URL: ts.TURNURL(), Username: ts.User, Password: ts.Password}}}
	a, err := ice.NewAgent(relayCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ice.NewAgent(&ice.Config{ListenAddrs: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sa, err := a.NewSession(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := b.NewSession(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	var cb *ice.Conn
	var errB error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cb, errB = sb.Connect(ctx, sa.Description())
	}()
	ca, errA := sa.Connect(ctx, sb.Description())
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	defer ca.Close()
	defer cb.Close()
	if !ca.Selected().Relayed {
		t.Fatalf("not relayed: %+v", ca.Selected())
	}

	mk := func() (*identity.Account, *identity.Device) {
		acc, _ := identity.NewAccount(nil)
		dev, err := acc.NewDevice(nil, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return acc, dev
	}
	aAcc, aDev := mk()
	bAcc, bDev := mk()
	var srv *tlslink.Link
	var srvErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv, srvErr = tlslink.Server(ctx, cb, &tlslink.Config{Device: bDev, PeerAccount: aAcc.ID(), PeerDevice: aDev.ID()})
	}()
	cli, err := tlslink.Client(ctx, ca, &tlslink.Config{Device: aDev, PeerAccount: bAcc.ID(), PeerDevice: bDev.ID()})
	wg.Wait()
	if err != nil || srvErr != nil {
		t.Fatal(err, srvErr)
	}

	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	src := filepath.Join(t.TempDir(), "movie.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	snd, err := transfer.NewSender(cli, transfer.Source{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendErr = snd.Run(ctx)
	}()
	rcv, err := transfer.Receive(ctx, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := rcv.Accept(ctx, transfer.Destination{Dir: t.TempDir()})
	wg.Wait()
	if err != nil || sendErr != nil {
		t.Fatal(err, sendErr)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file differs (%v)", err)
	}
}
