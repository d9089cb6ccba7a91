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

// midTransfer sets up Alice (behind a) sending a 24 MiB file to Bob
// (behind b, on a 4 MB/s access link) and returns once Bob's data flows.
type transferRun struct {
	alice, bob *Host
	rx, tx     *Proc
	id, inbox  string
	data       []byte
}

func midTransfer(t *testing.T, l *Lab, a, b NAT, turn bool, bobShape Shape) *transferRun {
	t.Helper()
	r := &transferRun{alice: l.Site(a).Host("alice", nil), bob: l.Site(b).Host("bob", &bobShape), inbox: t.TempDir()}
	r.alice.TURN, r.bob.TURN = turn, turn
	Befriend(r.alice, r.bob, r.alice.Init(), r.bob.Init())
	r.rx = r.bob.Recv(r.inbox)
	var src string
	src, r.data = file(t, 24<<20)
	r.tx = r.alice.Start("", "send", "bob", src)
	r.id = progressed(t, r.rx)
	return r
}

// queuedKeepingPartial checks the send ended cleanly with the device
// waiting to be tried again (exit 8, "queued") and Bob kept a partial
// file; it returns why the device waits.
func (r *transferRun) queuedKeepingPartial(t *testing.T) any {
	t.Helper()
	res := r.tx.Next(2*time.Minute, "result", nil)
	if code := r.tx.Wait(30 * time.Second); code != 8 || res["ok"] != false || res["state"] != "waiting" {
		t.Fatalf("exit %d, result %v", code, res)
	}
	if n := PartialSize(r.inbox); n <= 0 || n >= int64(len(r.data)) {
		t.Fatalf("partial file: %d bytes", n)
	}
	return res["devices"].([]any)[0].(map[string]any)["error"]
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
// notice (no bytes for the idle timeout) and stop cleanly; Alice's send
// exits 8 (queued: the device waits), Bob keeps the partial file. The link comes back and Bob's
// resume completes the file and verifies it.
func TestCutLinkThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	r := midTransfer(t, l, PortRestricted, Open, false, Shape{Delay: 5 * time.Millisecond, Rate: 4_000_000})
	r.bob.Shaper.Cut()
	cut := time.Now()
	why := r.queuedKeepingPartial(t)
	t.Logf("the sender gave up %v after the cut: %v", time.Since(cut).Round(time.Second), why)
	r.rx.Next(time.Minute, "state", func(ev map[string]any) bool { return ev["state"] == "failed" })
	r.rx.Kill()
	r.bob.Shaper.Restore()
	resumeAndVerify(t, r.alice, r.bob, r.id, r.inbox, r.data)
}

// TestKillRelayThenResume: a relayed transfer loses its TURN server
// mid-transfer. The send fails cleanly; the relay comes back, and a resume
// over it completes and verifies the file.
func TestKillRelayThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	r := midTransfer(t, l, Symmetric, PortRestricted, true, Shape{Rate: 4_000_000})
	l.TURN.Stop()
	t.Logf("after the relay died: %v", r.queuedKeepingPartial(t))
	r.rx.Kill()
	l.TURN = turnserver.StartWith(t, turnserver.Options{
		Exec: []string{"ip", "netns", "exec", l.Server.Name}, IP: ServerIP, AltIP: ServerAltIP, Port: 3478, Dial: l.Server.Dial,
	})
	resumeAndVerify(t, r.alice, r.bob, r.id, r.inbox, r.data)
}

// TestRestartReceiverThenResume: the receiving process is killed
// mid-transfer (both behind NATs) and started again; with the sender's
// recv running, the sender tries the device again by itself and the
// transfer resumes and completes, verified, with no resume command.
func TestRestartReceiverThenResume(t *testing.T) {
	needLab(t)
	l := New(t, bin, 1)
	r := midTransfer(t, l, PortRestricted, FullCone, true, Shape{Rate: 4_000_000})
	r.rx.Signal(syscall.SIGKILL)
	r.rx.Wait(10 * time.Second)
	r.queuedKeepingPartial(t)
	r.bob.Recv(r.inbox).Kill() // the receiver starts again (and stops): its history says interrupted
	if out, _, _ := r.bob.Run("transfers"); !strings.Contains(out, "interrupted") {
		t.Fatalf("history after the restart: %s", out)
	}
	r.alice.Recv(t.TempDir())
	rx := r.bob.Recv(r.inbox)
	ev := rx.Next(2*time.Minute, "state", func(ev map[string]any) bool { return ev["state"] == "finished" })
	if ev["transfer"] != r.id {
		t.Fatalf("finished %v, want %s", ev["transfer"], r.id)
	}
	same(t, filepath.Join(r.inbox, "data.bin"), r.data)
}

// TestDHTNodeDies: of two DHT bootstrap nodes, the one every host lists
// first dies after Bob joined; Alice starts afterwards with both listed,
// and the hosts, behind NATs, still find each other through the other: the
// transfer (relayed) succeeds.
func TestDHTNodeDies(t *testing.T) {
	needLab(t)
	l := New(t, bin, 2)
	alice := l.Site(PortRestricted).Host("alice", nil)
	bob := l.Site(Symmetric).Host("bob", nil)
	alice.TURN, bob.TURN = true, true
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	bob.Recv(inbox) // joined the DHT through both nodes
	l.DHTNodes()[0].Kill()
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
