package natlab

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/turnserver"
)

// file writes size random bytes and returns the path and the bytes.
func file(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// partial returns the size of the partial file in dir (-1: none).
func partial(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			if fi, err := e.Info(); err == nil {
				return fi.Size()
			}
		}
	}
	return -1
}

func same(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (%v), want the %d sent", path, len(got), err, len(want))
	}
}

// progressed waits until p reports an incoming transfer with bytes > 0,
// and returns the transfer ID.
func progressed(t *testing.T, p *Proc) string {
	t.Helper()
	ev := p.Next(2*time.Minute, "progress", func(ev map[string]any) bool {
		b, _ := ev["bytes"].(float64)
		return b > 0
	})
	return ev["transfer"].(string)
}

// resumeAndVerify runs recv on the sender (any running node serves a
// re-ask), then resume on the receiver, and checks the file.
func resumeAndVerify(t *testing.T, sender, receiver *Host, id, inbox string, data []byte) {
	t.Helper()
	sender.Recv(t.TempDir())
	out, errOut, code := receiver.Run("resume", id)
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	same(t, filepath.Join(inbox, "data.bin"), data)
}

// TestCutLinkThenResume: Bob's access link dies mid-transfer. Both sides
// notice (no bytes for the idle timeout) and fail cleanly; Alice's send
// exits 5, Bob keeps the partial file. The link comes back and Bob's
// resume completes the file and verifies it.
func TestCutLinkThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	alice := l.Site(PortRestricted).Host("alice", nil)
	bob := l.Site(Open).Host("bob", &Shape{Delay: 5 * time.Millisecond, Rate: 4_000_000})
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Recv(inbox)
	src, data := file(t, 24<<20)
	tx := alice.Start("", "send", "bob", src)
	id := progressed(t, rx)
	bob.Shaper.Cut()
	cut := time.Now()
	res := tx.Next(2*time.Minute, "result", nil)
	if code := tx.Wait(30 * time.Second); code != 5 || res["ok"] != false {
		t.Fatalf("send over a cut link: exit %d, result %v", code, res)
	}
	t.Logf("the sender gave up %v after the cut: %v", time.Since(cut).Round(time.Second), res["error"])
	rx.Next(time.Minute, "state", func(ev map[string]any) bool { return ev["state"] == "failed" })
	if n := partial(inbox); n <= 0 || n >= int64(len(data)) {
		t.Fatalf("partial file: %d bytes", n)
	}
	rx.Kill()
	bob.Shaper.Restore()
	resumeAndVerify(t, alice, bob, id, inbox, data)
}

// TestKillRelayThenResume: a relayed transfer loses its TURN server
// mid-transfer. The send fails cleanly; the relay comes back, and a resume
// over it completes and verifies the file.
func TestKillRelayThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	alice := l.Site(Symmetric).Host("alice", nil)
	bob := l.Site(PortRestricted).Host("bob", &Shape{Rate: 4_000_000})
	alice.TURN, bob.TURN = true, true
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Recv(inbox)
	src, data := file(t, 24<<20)
	tx := alice.Start("", "send", "bob", src)
	id := progressed(t, rx)
	l.TURN.Stop()
	res := tx.Next(2*time.Minute, "result", nil)
	if code := tx.Wait(30 * time.Second); code != 5 || res["ok"] != false {
		t.Fatalf("send through a killed relay: exit %d, result %v", code, res)
	}
	t.Logf("after the relay died: %v", res["error"])
	if n := partial(inbox); n <= 0 || n >= int64(len(data)) {
		t.Fatalf("partial file: %d bytes", n)
	}
	rx.Kill()
	l.TURN = turnserver.StartWith(t, turnserver.Options{
		Exec: []string{"ip", "netns", "exec", l.Server.Name}, IP: ServerIP, Port: 3478, Dial: l.Server.Dial,
	})
	resumeAndVerify(t, alice, bob, id, inbox, data)
}

// TestRestartReceiverThenResume: the receiving process is killed
// mid-transfer (behind a NAT, relayed) and started again; resume
// completes and verifies the file.
func TestRestartReceiverThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	alice := l.Site(PortRestricted).Host("alice", nil)
	bob := l.Site(FullCone).Host("bob", &Shape{Rate: 4_000_000})
	alice.TURN, bob.TURN = true, true
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Recv(inbox)
	src, data := file(t, 24<<20)
	tx := alice.Start("", "send", "bob", src)
	id := progressed(t, rx)
	rx.Signal(syscall.SIGKILL)
	rx.Wait(10 * time.Second)
	if code := tx.Wait(2 * time.Minute); code != 5 {
		t.Fatalf("send to a killed receiver: exit %d", code)
	}
	bob.Recv(inbox).Kill() // the receiver starts again (and stops): its history says interrupted
	out, _, _ := bob.Run("transfers")
	if !strings.Contains(out, "interrupted") {
		t.Fatalf("history after the restart: %s", out)
	}
	resumeAndVerify(t, alice, bob, id, inbox, data)
}

// TestDHTNodeDies: of two DHT bootstrap nodes, the one every host lists
// first dies; the hosts, behind NATs, still find each other through the
// other and the transfer (relayed) succeeds.
func TestDHTNodeDies(t *testing.T) {
	needLab(t)
	l := New(t, bin, 2)
	l.DHTNodes()[0].Kill()
	alice := l.Site(PortRestricted).Host("alice", nil)
	bob := l.Site(Symmetric).Host("bob", nil)
	alice.TURN, bob.TURN = true, true
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	bob.Recv(inbox)
	src, data := file(t, 1<<20)
	out, errOut, code := alice.Run("send", "bob", src)
	if code != 0 {
		t.Fatalf("send with one DHT node dead: exit %d\n%s%s", code, out, errOut)
	}
	same(t, filepath.Join(inbox, "data.bin"), data)
}

// TestShapedLink: a slow, lossy, jittery access link (the userspace
// shaper) still carries a verified transfer, at no more than its rate.
func TestShapedLink(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	shape := Shape{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Rate: 1_000_000}
	alice := l.Site(PortRestricted).Host("alice", &shape)
	bob := l.Site(Open).Host("bob", nil)
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	bob.Recv(inbox)
	src, data := file(t, 2<<20)
	tx := alice.Start("", "send", "bob", src)
	res := tx.Next(3*time.Minute, "result", nil)
	if code := tx.Wait(30 * time.Second); code != 0 {
		t.Fatalf("send over %v: exit %d, %v", shape, code, res)
	}
	same(t, filepath.Join(inbox, "data.bin"), data)
	rate := res["rate"].(float64)
	t.Logf("over %v: %.0f KB/s, first byte %.0f ms; shaper passed %d frames, dropped %d",
		shape, rate/1000, res["first_byte_ms"], alice.Shaper.Passed.Load(), alice.Shaper.Dropped.Load())
	if rate > 1.1*float64(shape.Rate) || rate < 0.2*float64(shape.Rate) {
		t.Fatalf("throughput %.0f B/s over a %d B/s link", rate, shape.Rate)
	}
	if alice.Shaper.Dropped.Load() == 0 {
		t.Fatal("a 1% lossy link dropped nothing")
	}
}
