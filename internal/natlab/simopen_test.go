package natlab

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSimultaneousOpenAgain: three sends, one after the other, through
// Alice's running recv, between two port-restricted NATs. Each file is
// larger than a kept link carries (maxStreamed, 64 MiB), so each is its
// own connection between the same two listener ports and public
// addresses, and each new simultaneous open meets the 4-tuple the
// previous connection left (in TIME-WAIT on the side that closed first,
// and in both routers' connection tracking). All three must go direct.
func TestSimultaneousOpenAgain(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	alice, bob := l.Site(PortRestricted).Host("alice", nil), l.Site(PortRestricted).Host("bob", nil)
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Recv(inbox)
	defer rx.Kill()
	ax := alice.Recv(t.TempDir()) // its listener's port serves the three sends
	defer ax.Kill()
	want := map[string][]byte{}
	for i, name := range []string{"one.bin", "two.bin", "three.bin"} {
		src, data := file(t, 65<<20)
		p := filepath.Join(filepath.Dir(src), name)
		if err := os.Rename(src, p); err != nil {
			t.Fatal(err)
		}
		want[name] = data
		tx := alice.Start("", "send", "bob", p)
		res := tx.Next(60*time.Second, "result", nil)
		if res["ok"] != true || res["link"] != "simultaneous-open" {
			t.Fatalf("file %d: ok %v link %v: %v", i+1, res["ok"], res["link"], res["error"])
		}
		if code := tx.Wait(30 * time.Second); code != 0 {
			t.Fatalf("send: exit %d; stderr:\n%s", code, tx.Stderr)
		}
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(inbox, name))
		if err != nil || string(got) != string(data) {
			t.Fatalf("%s: received file differs (%v)", name, err)
		}
	}
}
