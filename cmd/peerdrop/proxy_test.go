package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/testfile"
)

// TestProxyProcesses: dht-node --proxy serves signaling over HTTPS;
// Bob's recv reaches the DHT over UDP, Alice's send only the proxy
// (PEERDROP_PROXY, and a bootstrap address where no node answers). The
// proxy's certificate is kept in its home: a restart prints the same
// address.
func TestProxyProcesses(t *testing.T) {
	nodeHome := filepath.Join(t.TempDir(), "node")
	node := start(t, "", env(t), "--home", nodeHome, "dht-node", "--listen", "127.0.0.1:0", "--proxy", "127.0.0.1:0", "--json", "--stats", "0")
	boot := node.Next(10*time.Second, "listening", nil)["addr"].(string)
	addr := node.Next(10*time.Second, "proxy", nil)["addr"].(string)
	if !strings.HasPrefix(addr, "peerdrop-proxy://127.0.0.1:") || !strings.Contains(addr, "#") {
		t.Fatalf("proxy address %q", addr)
	}
	if fi, err := os.Stat(filepath.Join(nodeHome, "proxy-tls.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("proxy key file: %v %v", fi, err)
	}

	l := &lab{t: t, dir: t.TempDir(), boot: boot}
	l.env = env(t, "PEERDROP_BOOTSTRAP="+boot, "PEERDROP_LISTEN=127.0.0.1:0")
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	inbox := t.TempDir()
	rx := l.recv(l.home("bob"), "", "--yes", "--once", "--dir", inbox)

	src, data := testfile.Random(t, t.TempDir(), "via proxy.bin", 1<<20)
	blocked := env(t, "PEERDROP_BOOTSTRAP=127.0.0.1:9", "PEERDROP_LISTEN=127.0.0.1:0", "PEERDROP_PROXY="+addr)
	tx := start(t, "", blocked, "--home", l.home("alice"), "--json", "send", "bob", src)
	res := tx.Next(60*time.Second, "result", nil)
	if code := tx.Wait(10 * time.Second); code != 0 || res["ok"] != true {
		t.Fatalf("send through the proxy: status %d, result %v; stderr:\n%s", code, res, tx.Stderr)
	}
	if code := rx.Wait(20 * time.Second); code != 0 {
		t.Fatalf("recv: status %d; stderr:\n%s", code, rx.Stderr)
	}
	testfile.Same(t, filepath.Join(inbox, "via proxy.bin"), data)

	// A wrong pin is refused, and the error names the DHT and the proxy.
	wrong := addr[:strings.Index(addr, "#")+1] + strings.Repeat("A", 43)
	bad := env(t, "PEERDROP_BOOTSTRAP=127.0.0.1:9", "PEERDROP_LISTEN=127.0.0.1:0", "PEERDROP_PROXY="+wrong)
	out, errOut, code := runPD(t, bad, "", "--home", l.home("alice"), "send", "bob", src)
	if code == 0 || !strings.Contains(errOut, "dht: ") || !strings.Contains(errOut, "pin") {
		t.Fatalf("send with a wrong pin: status %d\n%s%s", code, out, errOut)
	}

	// The same address after a restart.
	node.Signal(os.Interrupt)
	node.Wait(10 * time.Second)
	again := start(t, "", env(t), "--home", nodeHome, "dht-node", "--listen", "127.0.0.1:0", "--proxy", "127.0.0.1:0", "--json", "--stats", "0")
	again.Next(10*time.Second, "listening", nil)
	a2 := again.Next(10*time.Second, "proxy", nil)["addr"].(string)
	if a2[strings.Index(a2, "#"):] != addr[strings.Index(addr, "#"):] {
		t.Fatalf("the pin changed across a restart: %s, %s", addr, a2)
	}
}
