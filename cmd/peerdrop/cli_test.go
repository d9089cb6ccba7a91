package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/natlab"
	"github.com/peerdrop/peerdrop/internal/testfile"
)

// The tests in this file run the real peerdrop binary, built once by
// TestMain, as separate processes talking over loopback only: every
// process gets --listen 127.0.0.1:0 and a dht-node on 127.0.0.1 as its
// bootstrap.

var binary string

func TestMain(m *testing.M) {
	if role := os.Getenv("PEERDROP_RAWCOPY"); role != "" { // BenchmarkCLIThroughput's copier
		if err := rawCopyMain(role); err != nil {
			fmt.Fprintln(os.Stderr, "raw copy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	b, dir, err := natlab.BuildPeerdrop(raceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building peerdrop:", err)
		os.Exit(1)
	}
	binary = b
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a clean environment: no PEERDROP_* from the caller, a HOME of
// the test's own.
func env(t *testing.T, extra ...string) []string {
	return natlab.CleanEnv(t.TempDir(), extra...)
}

// start runs peerdrop with args in the background; stdin is given as text.
func start(t *testing.T, stdin string, environ []string, args ...string) *natlab.Proc {
	t.Helper()
	return natlab.StartProc(t, environ, stdin, append([]string{binary}, args...)...)
}

// runPD runs peerdrop to completion and returns stdout, stderr and status.
func runPD(t *testing.T, environ []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// lab is a dht-node and the environment for devices that use it.
type lab struct {
	t    *testing.T
	node *natlab.Proc // the dht-node: stats every 2s
	boot string
	env  []string
	dir  string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{t: t, dir: t.TempDir()}
	node := start(t, "", env(t), "dht-node", "--listen", "127.0.0.1:0", "--json", "--stats", "2s")
	l.node = node
	ev := node.Next(10*time.Second, "listening", nil)
	l.boot = ev["addr"].(string)
	l.env = env(t, "PEERDROP_BOOTSTRAP="+l.boot, "PEERDROP_LISTEN=127.0.0.1:0")
	return l
}

func (l *lab) home(name string) string { return filepath.Join(l.dir, name) }

// pd runs a command on a home and fails the test on a non-zero status.
func (l *lab) pd(home string, args ...string) map[string]any {
	l.t.Helper()
	out, errOut, code := runPD(l.t, l.env, "", append([]string{"--home", home, "--json"}, args...)...)
	if code != 0 {
		l.t.Fatalf("peerdrop %v: status %d\n%s%s", args, code, out, errOut)
	}
	var ev map[string]any
	if line, _, _ := strings.Cut(out, "\n"); line != "" {
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			l.t.Fatalf("peerdrop %v: %q is not JSON", args, line)
		}
	}
	return ev
}

// person creates a home with an account; it returns the contact string.
func (l *lab) person(name, device string) string {
	l.t.Helper()
	ev := l.pd(l.home(name), "init", "--name", name, "--device", device)
	return ev["contact"].(string)
}

// friends makes two people contacts of each other.
func (l *lab) friends(a, aContact, b, bContact string) {
	l.t.Helper()
	l.pd(l.home(a), "contact", "add", bContact)
	l.pd(l.home(b), "contact", "add", aContact)
}

// recv starts a receiver; it returns once the device is published.
func (l *lab) recv(home, stdin string, args ...string) *natlab.Proc {
	l.t.Helper()
	p := start(l.t, stdin, l.env, append([]string{"--home", home, "--json", "recv"}, args...)...)
	p.Next(30*time.Second, "ready", nil)
	return p
}

func TestSendRecvProcesses(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	inbox := t.TempDir()
	rx := l.recv(l.home("bob"), "", "--yes", "--once", "--dir", inbox)

	src, data := testfile.Random(t, t.TempDir(), "report 2026.pdf", 3<<20+5)
	tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "bob", src)
	res := tx.Next(60*time.Second, "result", nil)
	if code := tx.Wait(10 * time.Second); code != 0 {
		t.Fatalf("send: status %d; stderr:\n%s", code, tx.Stderr)
	}
	if res["ok"] != true || res["state"] != "finished" || res["relayed"] != false || res["peer_name"] != "bob" {
		t.Fatalf("result %v", res)
	}
	if _, ok := res["first_byte_ms"].(float64); !ok {
		t.Fatalf("result without first_byte_ms: %v", res)
	}
	devs := res["devices"].([]any)
	if len(devs) != 1 || devs[0].(map[string]any)["name"] != "laptop" || devs[0].(map[string]any)["state"] != "finished" {
		t.Fatalf("devices %v", devs)
	}

	if code := rx.Wait(10 * time.Second); code != 0 {
		t.Fatalf("recv --once: status %d; stderr:\n%s", code, rx.Stderr)
	}
	var offer, finished map[string]any
	for _, ev := range rx.Rest() {
		switch {
		case ev["event"] == "offer":
			offer = ev
		case ev["event"] == "state" && ev["state"] == "finished":
			finished = ev
		}
	}
	if offer == nil || offer["name"] != "report 2026.pdf" || offer["peer_name"] != "alice" || offer["total"] != float64(len(data)) {
		t.Fatalf("offer event %v", offer)
	}
	if finished == nil || finished["path"] != filepath.Join(inbox, "report 2026.pdf") {
		t.Fatalf("finished event %v", finished)
	}
	testfile.Same(t, filepath.Join(inbox, "report 2026.pdf"), data)

	// Both histories say so.
	for _, who := range []string{"alice", "bob"} {
		out, _, code := runPD(t, l.env, "", "--home", l.home(who), "--json", "transfers")
		if code != 0 || !strings.Contains(out, `"state":"finished"`) || !strings.Contains(out, `"name":"report 2026.pdf"`) {
			t.Fatalf("%s's transfers (status %d): %s", who, code, out)
		}
	}
}

// TestRefused: the receiver answers n at the prompt; the sender exits 3
// with the reason, and so does recv --once.
func TestRefused(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	rx := l.recv(l.home("bob"), "n\n", "--once")
	src, _ := testfile.Random(t, t.TempDir(), "unwanted.bin", 1000)
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "send", "bob", src)
	if code != exitRefused {
		t.Fatalf("send: status %d, want %d\n%s%s", code, exitRefused, out, errOut)
	}
	if !strings.Contains(errOut, "bob refused unwanted.bin") || !strings.Contains(errOut, "declined") {
		t.Fatalf("send's error does not say who refused and why:\n%s", errOut)
	}
	rx.Next(10*time.Second, "question", nil)
	if code := rx.Wait(10 * time.Second); code != exitRefused {
		t.Fatalf("recv --once: status %d, want %d; stderr:\n%s", code, exitRefused, rx.Stderr)
	}
}

// TestTwoDevices: Bob joins a second device with device export/import;
// Alice's send reaches both (one result, two devices), and a receiver
// stopped with SIGTERM exits 130.
func TestTwoDevices(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	archive := filepath.Join(t.TempDir(), "bob.pdacct")
	pwEnv := append(append([]string(nil), l.env...), "PEERDROP_PASSWORD=correct horse battery staple")
	if out, errOut, code := runPD(t, pwEnv, "", "--home", l.home("bob"), "device", "export", archive); code != 0 {
		t.Fatalf("export: %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := runPD(t, pwEnv, "", "--home", l.home("bob-phone"), "--json", "device", "import", archive, "--device", "phone")
	if code != 0 || !strings.Contains(out, `"event":"imported"`) {
		t.Fatalf("import: %d\n%s%s", code, out, errOut)
	}
	ev := l.pd(l.home("bob"), "id")
	if devs := ev["devices"].([]any); len(devs) != 2 {
		t.Fatalf("bob's devices after the import: %v", ev)
	}

	in1, in2 := t.TempDir(), t.TempDir()
	r1 := l.recv(l.home("bob"), "", "--yes", "--dir", in1)
	l.recv(l.home("bob-phone"), "", "--yes", "--dir", in2)
	src, data := testfile.Random(t, t.TempDir(), "two.bin", 1<<20)
	tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "bob", src)
	res := tx.Next(60*time.Second, "result", nil)
	if code := tx.Wait(10 * time.Second); code != 0 || res["ok"] != true {
		t.Fatalf("send: status %d, result %v; stderr:\n%s", code, res, tx.Stderr)
	}
	names := map[string]bool{}
	for _, d := range res["devices"].([]any) {
		if d.(map[string]any)["state"] == "finished" {
			names[d.(map[string]any)["name"].(string)] = true
		}
	}
	if !names["laptop"] || !names["phone"] {
		t.Fatalf("devices that finished: %v", res["devices"])
	}
	testfile.Same(t, filepath.Join(in1, "two.bin"), data)
	testfile.Same(t, filepath.Join(in2, "two.bin"), data)

	r1.Cmd.Process.Signal(syscall.SIGTERM)
	if code := r1.Wait(10 * time.Second); code != exitInterrupted {
		t.Fatalf("recv after SIGTERM: status %d, want %d", code, exitInterrupted)
	}
}

// carolReceives is a lab where alice and carol are contacts and carol
// runs recv --yes into inbox.
func carolReceives(t *testing.T) (*lab, string, *natlab.Proc) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	carol := l.person("carol", "tablet")
	l.friends("alice", alice, "carol", carol)
	inbox := t.TempDir()
	return l, inbox, l.recv(l.home("carol"), "", "--yes", "--dir", inbox)
}

// killQueued kills the receiver rx and returns the result of the send
// tx, which must end queued (exit 8, not ok): the device waits.
func killQueued(t *testing.T, rx, tx *natlab.Proc) map[string]any {
	t.Helper()
	rx.Cmd.Process.Kill()
	rx.Wait(10 * time.Second)
	res := tx.Next(60*time.Second, "result", nil)
	if code := tx.Wait(10 * time.Second); code != exitQueued || res["ok"] != false {
		t.Fatalf("send to a killed receiver: status %d, result %v", code, res)
	}
	return res
}

// resumeOnCarol runs carol's peerdrop resume of transfer id, with alice's
// recv running to serve it, and returns its output; it must succeed.
func (l *lab) resumeOnCarol(t *testing.T, id string) string {
	t.Helper()
	l.recv(l.home("alice"), "", "--dir", t.TempDir())
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("carol"), "--json", "resume", id[:10])
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("resume: status %d\n%s%s", code, out, errOut)
	}
	return out
}

// TestKillReceiverThenResume: the receiving process is killed
// mid-transfer. The send fails cleanly (status 5, no hang), the partial
// file stays, and resume on the receiver (Alice's node running to serve
// it) completes the file and verifies it.
func TestKillReceiverThenResume(t *testing.T) {
	l, inbox, rx := carolReceives(t)
	big, data := testfile.Random(t, t.TempDir(), "big.bin", 256<<20)
	tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "carol", big)
	prog := rx.Next(60*time.Second, "progress", func(ev map[string]any) bool { return ev["bytes"].(float64) > 0 })
	id := prog["transfer"].(string)
	t0 := time.Now()
	res := killQueued(t, rx, tx)
	t.Logf("the send ended %v after the kill", time.Since(t0))
	// The link broke: the device waits, to be tried again (by alice's recv).
	if res["state"] != "waiting" {
		t.Fatalf("send to a killed receiver: result %v", res)
	}
	if n := natlab.PartialSize(inbox); n <= 0 || n >= int64(len(data)) {
		t.Fatalf("partial file in %s: %d bytes", inbox, n)
	}

	t0 = time.Now()
	out := l.resumeOnCarol(t, id)
	t.Logf("resume took %v", time.Since(t0))
	testfile.Same(t, filepath.Join(inbox, "big.bin"), data)
	if !strings.Contains(out, `"state":"ongoing"`) {
		t.Fatalf("resume showed no transfer: %s", out)
	}
}

// TestKillReceiverThenResumeFolder: as TestKillReceiverThenResume, for a
// folder: the receiver is killed once its first file is in; resume asks
// for the rest, which lands in the same folder, every file verified.
func TestKillReceiverThenResumeFolder(t *testing.T) {
	l, inbox, rx := carolReceives(t)
	src := filepath.Join(t.TempDir(), "trip")
	os.MkdirAll(src, 0o700)
	want := map[string][]byte{}
	for name, size := range map[string]int64{"a-notes.txt": 4000, "b-video.mp4": 96 << 20, "c-video.mp4": 96 << 20} {
		_, want[name] = testfile.Random(t, src, name, size)
	}
	tx := start(t, "", l.env, "--home", l.home("alice"), "--json", "send", "carol", src)
	first := rx.Next(60*time.Second, "file", nil)
	id := first["transfer"].(string)
	killQueued(t, rx, tx)
	l.resumeOnCarol(t, id)
	for name, data := range want {
		testfile.Same(t, filepath.Join(inbox, "trip", name), data)
	}
	if _, err := os.Stat(filepath.Join(inbox, "trip (1)")); !os.IsNotExist(err) {
		t.Fatal("the resumed folder went elsewhere")
	}
}

func TestUnknownContact(t *testing.T) {
	l := newLab(t)
	l.person("alice", "desk")
	src, _ := testfile.Random(t, t.TempDir(), "x.bin", 10)
	_, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "send", "carol", src)
	if code != exitUnknown || !strings.Contains(errOut, `no contact "carol"`) || !strings.Contains(errOut, "hint: ") {
		t.Fatalf("status %d, stderr:\n%s", code, errOut)
	}
}

func TestUsageAndSetupErrors(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	e := env(t)
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--bogus"}, exitUsage, "unknown flag"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"send", "bob"}, exitUsage, "requires at least 2 arg"},
		{[]string{"contact", "add", "not-an-id"}, exitUsage, "not a contact string"},
		{[]string{"--log-level", "loud", "version"}, exitUsage, "--log-level"},
		{[]string{"--listen", "nonsense", "id"}, exitNotInit, "peerdrop init"},
		{[]string{"id"}, exitNotInit, "peerdrop init"},
		{[]string{"demo", "--size", "-1"}, exitUsage, "--size"},
	} {
		_, errOut, code := runPD(t, e, "", append([]string{"--home", home}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("peerdrop %v: status %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.says)
		}
	}
	// A bad --listen is a usage error once it is used.
	if _, _, code := runPD(t, e, "", "--home", home, "init", "--name", "x"); code != 0 {
		t.Fatal("init failed")
	}
	if _, errOut, code := runPD(t, e, "", "--home", home, "--listen", "nonsense", "recv"); code != exitUsage || !strings.Contains(errOut, "--listen") {
		t.Errorf("bad --listen: status %d, %q", code, errOut)
	}
	if _, errOut, code := runPD(t, e, "", "--home", home, "init"); code != exitError || !strings.Contains(errOut, "already holds an account") {
		t.Errorf("second init: status %d, %q", code, errOut)
	}
}

// TestOptionPrecedence: flag over environment over config file.
func TestOptionPrecedence(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	e := env(t)
	if _, _, code := runPD(t, e, "", "--home", home, "init", "--name", "Zoë"); code != 0 {
		t.Fatal("init failed")
	}
	conf := filepath.Join(home, "config")
	b, err := os.ReadFile(conf)
	if err != nil || !strings.Contains(string(b), "name = Zoë") {
		t.Fatalf("config template: %q, %v", b, err)
	}
	if err := os.WriteFile(conf, append(b, "log-level = loud\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runPD(t, e, "", "--home", home, "version"); code != exitUsage || !strings.Contains(errOut, "config: log-level") {
		t.Fatalf("bad config value: status %d, %q", code, errOut)
	}
	e2 := append(append([]string(nil), e...), "PEERDROP_LOG_LEVEL=info")
	if _, errOut, code := runPD(t, e2, "", "--home", home, "version"); code != 0 {
		t.Fatalf("environment over config: status %d, %q", code, errOut)
	}
	e3 := append(append([]string(nil), e...), "PEERDROP_LOG_LEVEL=loud")
	if _, errOut, code := runPD(t, e3, "", "--home", home, "--log-level", "error", "version"); code != 0 {
		t.Fatalf("flag over environment: status %d, %q", code, errOut)
	}
	// The name from the config file is in the contact string.
	out, _, code := runPD(t, e2, "", "--home", home, "id", "--offline")
	if code != 0 || !strings.Contains(out, "?name=Zo%C3%AB") {
		t.Fatalf("id: %d %q", code, out)
	}
	// PEERDROP_HOME is the home when --home is not given.
	e4 := append(append([]string(nil), e2...), "PEERDROP_HOME="+home)
	if out, _, code := runPD(t, e4, "", "id", "--offline"); code != 0 || !strings.Contains(out, home) {
		t.Fatalf("PEERDROP_HOME: %d %q", code, out)
	}
	if err := os.WriteFile(conf, []byte("colour = blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runPD(t, e, "", "--home", home, "version"); code != exitUsage || !strings.Contains(errOut, "config:1") {
		t.Fatalf("unknown config key: status %d, %q", code, errOut)
	}
}

func TestDemo(t *testing.T) {
	out, errOut, code := runPD(t, env(t), "", "demo", "--size", "3000000", "--json")
	if code != 0 {
		t.Fatalf("demo: status %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last["event"] != "demo" || last["ok"] != true || len(last["verified"].([]any)) != 2 {
		t.Fatalf("demo's last line: %s", lines[len(lines)-1])
	}
	// The human form says it passed.
	out, errOut, code = runPD(t, env(t), "", "demo", "--size", "100000")
	if code != 0 || !strings.Contains(out, "Demo passed") || !strings.Contains(errOut, "matches the source") {
		t.Fatalf("demo: status %d\n%s%s", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runPD(t, env(t), "", "version")
	if code != 0 || !strings.HasPrefix(out, "peerdrop ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// TestSendFolderProcesses: a folder and a file in one offer; the
// receiver is asked once, the files land in a new folder, and JSON has a
// "file" event per file.
func TestSendFolderProcesses(t *testing.T) {
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	src := t.TempDir()
	want := map[string][]byte{}
	for _, rel := range []string{"photos/a.jpg", "photos/2026/b.jpg", "photos/2026/c.jpg", "notes.txt"} {
		p := filepath.Join(src, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o700)
		_, want[rel] = testfile.Random(t, filepath.Dir(p), filepath.Base(p), 100<<10)
	}
	inbox := t.TempDir()
	os.MkdirAll(filepath.Join(inbox, "photos"), 0o700) // not to be merged into
	rx := start(t, "y\n", l.env, "--home", l.home("bob"), "recv", "--once", "--dir", inbox)
	time.Sleep(500 * time.Millisecond)
	out, errOut, code := runPD(t, l.env, "", "--home", l.home("alice"), "--json", "send", "bob", filepath.Join(src, "photos"), filepath.Join(src, "notes.txt"))
	if code != 0 || !strings.Contains(out, `"event":"result"`) || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("send: status %d\n%s%s", code, out, errOut)
	}
	if n := strings.Count(out, `"event":"file"`); n != 4 {
		t.Fatalf("%d file events:\n%s", n, out)
	}
	if c := rx.Wait(30 * time.Second); c != 0 {
		t.Fatalf("recv: status %d\n%s", c, rx.Stderr)
	}
	if !strings.Contains(rx.Stderr.String(), "offers photos/ and 1 more (4 files, 400.0 KiB)") {
		t.Fatalf("prompt:\n%s", rx.Stderr)
	}
	for rel, data := range want {
		p := filepath.Join(inbox, filepath.FromSlash(strings.Replace(rel, "photos/", "photos (1)/", 1)))
		testfile.Same(t, p, data)
	}
	if ents, _ := os.ReadDir(filepath.Join(inbox, "photos")); len(ents) != 0 {
		t.Fatalf("the existing folder got %d entries", len(ents))
	}
}
