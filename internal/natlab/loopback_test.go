package natlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/netns"
)

// TestLoopbackOnly: on a machine whose only interface up is loopback
// (airplane mode, a container), two devices with default settings (no
// --listen) connect through a dht-node on the same machine. Before, each
// advertised no candidate ("no candidate pair to try") unless both were
// given --listen 127.0.0.1:0.
func TestLoopbackOnly(t *testing.T) {
	needLab(t)
	ns := netns.New(t) // lo only, up
	run := func(home string, args ...string) *Proc {
		argv := append([]string{"ip", "netns", "exec", ns.Name, bin, "--home", home, "--json", "--bootstrap", "127.0.0.1:6882"}, args...)
		return StartProc(t, CleanEnv(t.TempDir()), "", argv...)
	}
	wait := func(p *Proc, what string) {
		t.Helper()
		if code := p.Wait(30 * time.Second); code != 0 {
			t.Fatalf("%s: status %d\n%s", what, code, p.Stderr)
		}
	}
	node := StartProc(t, CleanEnv(t.TempDir()), "", "ip", "netns", "exec", ns.Name, bin, "--home", t.TempDir(), "--json", "dht-node", "--stats", "0")
	node.Next(10*time.Second, "listening", nil)
	dir := t.TempDir()
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	contact := map[string]string{}
	for name, home := range map[string]string{"alice": alice, "bob": bob} {
		p := run(home, "init", "--name", name, "--device", name+"-dev")
		ev := p.Next(10*time.Second, "init", nil)
		contact[name] = ev["contact"].(string)
		wait(p, name+" init")
	}
	wait(run(alice, "contact", "add", contact["bob"]), "alice contact add")
	wait(run(bob, "contact", "add", contact["alice"]), "bob contact add")
	inbox := t.TempDir()
	rx := run(bob, "recv", "--yes", "--once", "--dir", inbox)
	rx.Next(30*time.Second, "ready", nil)
	src := filepath.Join(t.TempDir(), "offline.txt")
	data := strings.Repeat("no network at all ", 1000)
	if err := os.WriteFile(src, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	tx := run(alice, "send", "bob", src)
	res, why := tx.TryNext(60*time.Second, "result", nil)
	if why != "" || res["ok"] != true || res["link"] != "direct" {
		t.Fatalf("send: %s %v\n%s", why, res, tx.Stderr)
	}
	wait(rx, "recv")
	got, err := os.ReadFile(filepath.Join(inbox, "offline.txt"))
	if err != nil || string(got) != data {
		t.Fatalf("received file differs: %v", err)
	}
}
