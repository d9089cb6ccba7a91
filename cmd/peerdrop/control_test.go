package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/testfile"
)

// TestSendWhileReceiving: with Alice's recv running (the documented way
// to receive), her sends run in it through the control socket: two at
// once, each with its JSON result and exit status, and a failing one with
// the same error output and status as without a running recv.
func TestSendWhileReceiving(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	rxBob := l.recv(l.home("bob"), "", "--yes", "--dir", t.TempDir())
	defer rxBob.Kill()

	// Dave never runs peerdrop: his devices are never found.
	dave := l.person("dave", "pc")
	l.pd(l.home("alice"), "contact", "add", dave)
	src, _ := testfile.Random(t, t.TempDir(), "alone.bin", 100)
	localOut, localErr, localCode := runPD(t, l.env, "", "--home", l.home("alice"), "send", "--find-timeout", "1s", "dave", src)

	rxAlice := l.recv(l.home("alice"), "", "--yes", "--dir", t.TempDir())
	defer rxAlice.Kill()
	if fi, err := os.Stat(filepath.Join(l.home("alice"), controlFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}

	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, _ := testfile.Random(t, t.TempDir(), "file"+string(rune('a'+i))+".bin", 1<<20)
			tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "bob", src)
			res, why := tx.TryNext(60*time.Second, "result", nil)
			code := tx.Wait(10 * time.Second)
			if why != "" || code != 0 || res["ok"] != true || res["state"] != "finished" {
				t.Errorf("send %d while receiving: %s, status %d, result %v; stderr:\n%s", i, why, code, res, tx.Stderr)
			}
		}()
	}
	wg.Wait()

	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "send", "--find-timeout", "1s", "dave", src)
	if code != localCode || errOut != localErr || out != localOut {
		t.Fatalf("through the running recv: status %d\n%s%s\nwithout it: status %d\n%s%s", code, out, errOut, localCode, localOut, localErr)
	}
	if code != exitFailed || !strings.Contains(errOut, "no device of dave found") {
		t.Fatalf("status %d: %s", code, errOut)
	}
	// The running recv is still receiving.
	rxAlice.Signal(os.Interrupt)
	if c := rxAlice.Wait(10 * time.Second); c != exitInterrupted {
		t.Fatalf("recv after Ctrl-C: status %d\n%s", c, rxAlice.Stderr)
	}
	if _, err := os.Stat(filepath.Join(l.home("alice"), controlFile)); !os.IsNotExist(err) {
		t.Fatalf("the control socket is left behind: %v", err)
	}
}
