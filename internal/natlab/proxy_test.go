package natlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUDPBlockedThroughTLS: a host behind a router that drops all UDP
// reaches signaling through the proxy (TLS on 443) and TURN over TLS on
// 443; the other host is behind a symmetric NAT with no TURN of its own, so
// the only path is the UDP-blocked host's relay, and its only TURN server
// is turns: (TLS on 443): a relayed path proves the allocation over TLS.
func TestUDPBlockedThroughTLS(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	alice := l.Site(UDPBlocked).Host("alice", nil)
	bob := l.Site(Symmetric).Host("bob", nil)
	alice.TURN, alice.TURNTLS, alice.Proxy = true, true, true
	bob.Proxy = true
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Recv(inbox, "--once")
	src := filepath.Join(t.TempDir(), "f.bin")
	data := []byte(strings.Repeat("through TLS on 443 ", 50000))
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tx := alice.Start("", "send", "bob", src)
	res, why := tx.TryNext(2*time.Minute, "result", nil)
	if why != "" || res["ok"] != true || res["link"] != "relay" {
		t.Fatalf("send: %s %v\nalice:\n%s\nbob:\n%s", why, res, tx.Stderr, rx.Stderr)
	}
	if code := rx.Wait(30 * time.Second); code != 0 {
		t.Fatalf("recv: status %d\n%s", code, rx.Stderr)
	}
	got, err := os.ReadFile(filepath.Join(inbox, "f.bin"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("received file differs: %v", err)
	}
}
