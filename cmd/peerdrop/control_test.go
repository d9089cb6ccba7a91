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
