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

// TestAcceptFromAnotherTerminal: a recv with no terminal to ask (its
// input ended) keeps offers waiting; "peerdrop accept ID" and "refuse ID"
// from another terminal answer them, and the sender sees the answer.
func TestAcceptFromAnotherTerminal(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	bobHome := l.home("bob")
	if _, errOut, code := runPD(t, l.env, "", "--home", bobHome, "accept", "0123"); code != exitUnknown {
		t.Fatalf("accept with no recv running: status %d: %s", code, errOut)
	}
	inbox := t.TempDir()
	rx := l.recv(bobHome, "", "--dir", inbox) // stdin at its end: no one to ask here
	defer rx.Kill()

	question := func() string {
		t.Helper()
		ev := rx.Next(30*time.Second, "question", nil)
		return ev["transfer"].(string)
	}
	src, data := testfile.Random(t, t.TempDir(), "yes please.bin", 300<<10)
	tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "bob", src)
	id := question()
	if out, errOut, code := runPD(t, l.env, "", "--home", bobHome, "accept", id[:10]); code != 0 || !strings.Contains(out, "Accepted yes please.bin from alice") {
		t.Fatalf("accept: status %d\n%s%s", code, out, errOut)
	}
	if res := tx.Next(60*time.Second, "result", nil); res["ok"] != true || tx.Wait(10*time.Second) != 0 {
		t.Fatalf("send after accept: %v\n%s", res, tx.Stderr)
	}
	testfile.Same(t, filepath.Join(inbox, "yes please.bin"), data)
	if _, errOut, code := runPD(t, l.env, "", "--home", bobHome, "accept", id[:10]); code != exitUnknown {
		t.Fatalf("accept of an answered offer: status %d: %s", code, errOut)
	}

	src2, _ := testfile.Random(t, t.TempDir(), "no thanks.bin", 1000)
	tx2 := start(t, "", l.env, "--home", l.home("alice"), "send", "bob", src2)
	id2 := question()
	if out, errOut, code := runPD(t, l.env, "", "--home", bobHome, "--json", "refuse", id2[:10], "--reason", "not today"); code != 0 || !strings.Contains(out, `"event":"refused"`) {
		t.Fatalf("refuse: status %d\n%s%s", code, out, errOut)
	}
	if code := tx2.Wait(60 * time.Second); code != exitRefused || !strings.Contains(tx2.Stderr.String(), "not today") {
		t.Fatalf("send after refuse: status %d\n%s", code, tx2.Stderr)
	}
}

// TestOfflineDeviceGetsItLater: a send to a device that is offline is
// queued (status 8) in the running recv; that recv is killed and started
// again, and keeps the delivery; the device comes up later and gets the
// file, verified, with nobody sending again.
func TestOfflineDeviceGetsItLater(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	carol := l.person("carol", "tablet")
	l.friends("alice", alice, "carol", carol)
	// Carol's device publishes itself once, then goes offline.
	rxCarol := l.recv(l.home("carol"), "", "--yes")
	rxCarol.Kill()
	rxCarol.Wait(10 * time.Second)

	rxAlice := l.recv(l.home("alice"), "", "--yes", "--dir", t.TempDir())
	src, data := testfile.Random(t, t.TempDir(), "later.bin", 1<<20)
	// Each waits for an answer (30 s) before it is queued: both at once.
	text := start(t, "", l.env, "--home", l.home("alice"), "send", "carol", src)
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "--json", "send", "carol", src)
	if code != exitQueued || !strings.Contains(out, `"state":"waiting"`) {
		t.Fatalf("send to an offline device: status %d\n%s%s", code, out, errOut)
	}
	if code := text.Wait(30 * time.Second); code != exitQueued || !strings.Contains(text.Stderr.String(), "queued: no device answered yet") ||
		!strings.Contains(text.Stderr.String(), "the running peerdrop recv tries again until") {
		t.Fatalf("queued send: status %d, stderr:\n%s", code, text.Stderr.String())
	}
	tr, _, _ := runPD(t, l.env, "", "--home", l.home("alice"), "transfers")
	if strings.Count(tr, "waiting") < 2 {
		t.Fatalf("transfers while waiting:\n%s", tr)
	}

	// The daemon dies and comes back: the deliveries wait on.
	rxAlice.Kill()
	rxAlice.Wait(10 * time.Second)
	rxAlice = l.recv(l.home("alice"), "", "--yes", "--dir", t.TempDir())
	defer rxAlice.Kill()

	inbox := t.TempDir()
	t0 := time.Now()
	rxCarol = l.recv(l.home("carol"), "", "--yes", "--dir", inbox)
	defer rxCarol.Kill()
	for i := 0; i < 2; i++ {
		ev := rxCarol.Next(90*time.Second, "state", func(ev map[string]any) bool { return ev["state"] == "finished" })
		testfile.Same(t, ev["path"].(string), data)
	}
	t.Logf("delivered %v after the device started", time.Since(t0))
	waitTransfers := func() string {
		for end := time.Now().Add(10 * time.Second); ; {
			tr, _, _ = runPD(t, l.env, "", "--home", l.home("alice"), "--json", "transfers")
			if !strings.Contains(tr, `"waiting"`) || time.Now().After(end) {
				return tr
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if tr := waitTransfers(); strings.Contains(tr, `"waiting"`) || strings.Count(tr, `"state":"finished"`) < 2 {
		t.Fatalf("transfers after delivery:\n%s", tr)
	}
}

// TestContactAddedWhileRunning: two people add each other while both run
// recv; a send right after succeeds, as the running nodes learn of the
// new contact from "contact add" at once.
func TestContactAddedWhileRunning(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	rxAlice := l.recv(l.home("alice"), "", "--yes", "--dir", t.TempDir())
	defer rxAlice.Kill()
	inbox := t.TempDir()
	rxBob := l.recv(l.home("bob"), "", "--yes", "--dir", inbox)
	defer rxBob.Kill()
	l.friends("alice", alice, "bob", bob)
	src, data := testfile.Random(t, t.TempDir(), "hello.txt", 1000)
	t0 := time.Now()
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "--json", "--retry-for", "0", "send", "bob", src)
	if code != 0 {
		t.Fatalf("send to a contact added a moment ago: status %d\n%s%s", code, out, errOut)
	}
	t.Logf("sent %v after adding the contact", time.Since(t0))
	ev := rxBob.Next(30*time.Second, "state", func(ev map[string]any) bool { return ev["state"] == "finished" })
	testfile.Same(t, ev["path"].(string), data)
}
