package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/testfile"
)

// TestHostilePeerText: a contact whose device name and refusal reason
// carry terminal escapes (clear the screen, set the window title) and a
// bidi override. Alice's send and transfers print them as escapes, never
// raw; with --json the reason arrives exact, escaped.
func TestHostilePeerText(t *testing.T) {
	l := newLab(t)
	l.person("alice", "desk")
	evilName := "laptop\x1b[2J\u202e"
	reason := "\x1b]0;pwned\x07\x1b[2J no thanks \u202eexe.txt"
	bobHome := l.home("bob")
	if _, _, err := peerdrop.Init(bobHome, evilName); err != nil {
		t.Fatal(err)
	}
	bobContact := l.pd(bobHome, "id")["contact"].(string)
	l.pd(l.home("alice"), "contact", "add", bobContact, "--name", "bob")
	aliceID, err := identity.ParseAccountID(l.pd(l.home("alice"), "id")["account"].(string))
	if err != nil {
		t.Fatal(err)
	}
	boot := netip.MustParseAddrPort(l.boot)
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	bob, err := peerdrop.Open(&peerdrop.Config{Home: bobHome, Bootstrap: []netip.AddrPort{boot}, DHTListen: lo,
		ICE: ice.Config{ListenAddrs: []netip.AddrPort{lo}}})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.AddContact(aliceID, "alice"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case in := <-bob.Offers():
				in.Refuse(reason)
			case <-ctx.Done():
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // bob's device list published

	src, _ := testfile.Random(t, t.TempDir(), "f.bin", 1000)
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "send", "bob", src)
	if code != exitRefused {
		t.Fatalf("send: status %d\n%s%s", code, out, errOut)
	}
	tout, terr, _ := runPD(t, l.env, "", "--home", l.home("alice"), "transfers")
	for what, s := range map[string]string{"send's output": out + errOut, "transfers": tout + terr} {
		if strings.ContainsAny(s, "\x1b\x07\u202e") {
			t.Errorf("%s prints peer text raw: %q", what, s)
		}
	}
	if !strings.Contains(errOut, `\x1b]0;pwned\x07`) {
		t.Errorf("send's error does not show the reason escaped: %q", errOut)
	}

	jout, _, code := runPD(t, l.env, "", "--home", l.home("alice"), "--json", "send", "bob", src)
	if code != exitRefused || strings.ContainsAny(jout, "\x1b\u202e") {
		t.Fatalf("send --json: status %d, raw escapes in %q", code, jout)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(jout), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if strings.Contains(line, `\u202e`) && strings.Contains(fmtAny(ev), reason) {
			found = true
		}
	}
	if !found {
		t.Errorf("no JSON line carries the exact reason, escaped: %s", jout)
	}
}

// fmtAny flattens decoded JSON to its strings.
func fmtAny(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		var b strings.Builder
		for _, e := range x {
			b.WriteString(fmtAny(e) + "\n")
		}
		return b.String()
	case []any:
		var b strings.Builder
		for _, e := range x {
			b.WriteString(fmtAny(e) + "\n")
		}
		return b.String()
	}
	return ""
}
