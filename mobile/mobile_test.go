package mobile

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/testfile"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/dht"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an app's listener: it records every callback.
type recorder struct {
	mu       sync.Mutex
	offers   chan *Offer
	progress []*Progress
	states   [][]byte
	logs     int
}

func newRecorder() *recorder { return &recorder{offers: make(chan *Offer, 16)} }

func (r *recorder) OnOffer(o *Offer) { r.offers <- o }

// nextOffer waits for the next offer (up to 30 s).
func (r *recorder) nextOffer(t *testing.T) *Offer {
	t.Helper()
	select {
	case o := <-r.offers:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("no offer")
		return nil
	}
}
func (r *recorder) OnTransfer(p *Progress) {
	r.mu.Lock()
	r.progress = append(r.progress, p)
	r.mu.Unlock()
}
func (r *recorder) OnDevice(p *Progress) { r.OnTransfer(p) }
func (r *recorder) OnState(b []byte) {
	r.mu.Lock()
	r.states = append(r.states, append([]byte(nil), b...))
	r.mu.Unlock()
}
func (r *recorder) OnLog(int, string) { r.mu.Lock(); r.logs++; r.mu.Unlock() }

// final returns the last whole-transfer progress of a transfer, once terminal.
func (r *recorder) final(id string) *Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.progress) - 1; i >= 0; i-- {
		if p := r.progress[i]; p.TransferID == id && p.DeviceID == "" && p.Terminal() {
			return p
		}
	}
	return nil
}

func waitFinal(t *testing.T, r *recorder, id string) *Progress {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if p := r.final(id); p != nil {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("transfer %s never ended", id)
	return nil
}

func localDHT(t *testing.T) string {
	d, err := dht.New(&dht.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.Addr().String()
}

func newMobile(t *testing.T, name, boot string) (*Node, *recorder, string) {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if IsInitialized(home) {
		t.Fatal("initialized before CreateIdentity")
	}
	acct, err := CreateIdentity(home, name+"-phone")
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig(home, filepath.Join(home, "Download"))
	cfg.Bootstrap, cfg.Listen, cfg.LogLevel = boot, "127.0.0.1:0", -4
	n := NewNode(cfg)
	r := newRecorder()
	n.SetOfferListener(r)
	n.SetProgressListener(r)
	n.SetStateListener(r)
	n.SetLogListener(r)
	t.Cleanup(n.Close)
	return n, r, acct
}

// sees waits until from finds the named contact's devices in the DHT and
// watches them.
func sees(t *testing.T, from *Node, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := from.running()
	for {
		var err error
		for _, c := range node.Contacts() {
			if c.Name != name {
				continue
			}
			var devs []signaling.DeviceEntry
			if devs, err = node.ContactDevices(ctx, c.ID); err == nil && len(devs) > 0 {
				if err = node.RefreshContacts(ctx); err == nil {
					return
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("never saw %s's devices: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMobileSendAcceptRefuse(t *testing.T) {
	boot := localDHT(t)
	alice, ra, aliceID := newMobile(t, "alice", boot)
	bob, rb, bobID := newMobile(t, "bob", boot)
	if _, err := alice.AddContact("peerdrop:"+bobID+"?name=Bob", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(aliceID, "Alice"); err != nil {
		t.Fatal(err)
	}
	if cl, err := alice.Contacts(); err != nil || cl.Len() != 1 || cl.Get(0).Name != "Bob" || cl.Get(1) != nil {
		t.Fatalf("contacts: %v", err)
	}
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	if err := bob.Start(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(alice.ContactString("Alice"), "peerdrop:"+aliceID+"?name=Alice") {
		t.Fatalf("contact string %q", alice.ContactString("Alice"))
	}
	sees(t, alice, "Bob")
	sees(t, bob, "Alice")

	// Bob's app accepts the first offer from its listener's thread.
	src, data := testfile.Random(t, t.TempDir(), "photo.jpg", 2<<20+3)
	tr, err := alice.SendFile("Bob", src)
	if err != nil {
		t.Fatal(err)
	}
	o := rb.nextOffer(t)
	if o.ID != tr.ID() || o.FromName != "Alice" || o.Name != "photo.jpg" || o.Size != int64(len(data)) || o.MediaType != "image/jpeg" {
		t.Fatalf("offer %+v", o)
	}
	if err := bob.Accept(o.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := tr.Await(30_000); err != nil {
		t.Fatal(err)
	}
	if p := waitFinal(t, ra, tr.ID()); p.State != "finished" || p.Bytes != int64(len(data)) {
		t.Fatalf("alice's aggregate %+v", p)
	}
	got := waitFinal(t, rb, tr.ID())
	if got.State != "finished" || got.Direction != "incoming" {
		t.Fatalf("bob's transfer %+v", got)
	}
	testfile.Same(t, got.Path, data)
	if filepath.Dir(got.Path) != filepath.Join(bob.cfg.Home, "Download") {
		t.Fatalf("saved in %s", got.Path)
	}
	var st map[string]any
	if err := json.Unmarshal(tr.StatusJSON(), &st); err != nil || st["state"] != "finished" || len(st["devices"].([]any)) != 1 {
		t.Fatalf("status %s", tr.StatusJSON())
	}
	// Per-device progress reached Alice too, and states came as JSON.
	ra.mu.Lock()
	var devFinished, stateJSON bool
	for _, p := range ra.progress {
		devFinished = devFinished || (p.DeviceID != "" && p.State == "finished" && p.DeviceName == "bob-phone")
	}
	for _, s := range ra.states {
		stateJSON = stateJSON || strings.Contains(string(s), `"state":"finished"`) && strings.Contains(string(s), `"peer_name":"Bob"`)
	}
	logs := ra.logs
	ra.mu.Unlock()
	if !devFinished || !stateJSON || logs == 0 {
		t.Fatalf("device finished %v, state JSON %v, logs %d", devFinished, stateJSON, logs)
	}

	// Background mode and a network change keep things working; Bob
	// refuses the next offer.
	bob.SetForeground(false)
	bob.NetworkChanged()
	bob.SetForeground(true)
	tr2, err := alice.SendFile(bobID, src)
	if err != nil {
		t.Fatal(err)
	}
	o = <-rb.offers
	if err := bob.Refuse(o.ID, "not now"); err != nil {
		t.Fatal(err)
	}
	if err := tr2.Await(30_000); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Fatalf("refused send: %v", err)
	}
	if p := waitFinal(t, ra, tr2.ID()); p.State != "refused" {
		t.Fatalf("alice's view of the refusal %+v", p)
	}
	if err := bob.Accept(o.ID, ""); err == nil {
		t.Fatal("accepted an offer already refused")
	}

	// An offer accepted at a chosen path.
	tr3, err := alice.SendFile("Bob", src)
	if err != nil {
		t.Fatal(err)
	}
	o = <-rb.offers
	dst := filepath.Join(t.TempDir(), "chosen.jpg")
	if err := bob.Accept(o.ID, dst); err != nil {
		t.Fatal(err)
	}
	if err := tr3.Await(30_000); err != nil {
		t.Fatal(err)
	}
	waitFinal(t, rb, tr3.ID())
	testfile.Same(t, dst, data)

	// Unknown contact: an error at once. History: three transfers.
	if _, err := alice.SendFile("Carol", src); err == nil {
		t.Fatal("sent to an unknown contact")
	}
	h, err := alice.HistoryJSON()
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(h, &recs); err != nil || len(recs) != 3 {
		t.Fatalf("history %s", h)
	}
	if _, err := alice.StatsJSON(); err != nil {
		t.Fatal(err)
	}
}

// TestMobileNoDevices: a contact that never ran has no device list; the
// send returns a handle at once and fails through the listeners.
func TestMobileNoDevices(t *testing.T) {
	boot := localDHT(t)
	alice, ra, _ := newMobile(t, "alice", boot)
	_, _, carolID := newMobile(t, "carol", boot)
	if _, err := alice.AddContact(carolID, "Carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFile("Carol", os.Args[0]); err != ErrNotStarted {
		t.Fatalf("send before Start: %v", err)
	}
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tr, err := alice.SendFile("Carol", os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("SendFile blocked for %v", d)
	}
	p := waitFinal(t, ra, tr.ID())
	if p.State != "failed" || p.Error == "" || !tr.IsDone() || tr.Await(0) == nil {
		t.Fatalf("send to a contact with no devices: %+v", p)
	}
	// Stop and start again.
	alice.Stop()
	if alice.IsRunning() {
		t.Fatal("running after Stop")
	}
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	if alice.AccountID() == "" {
		t.Fatal("no account after restart")
	}
}

// TestNilConfig: NewNode(nil) is a Node whose Start says what is missing.
func TestNilConfig(t *testing.T) {
	n := NewNode(nil)
	defer n.Close()
	if err := n.Start(); err == nil || !strings.Contains(err.Error(), "Home is required") {
		t.Fatalf("Start of NewNode(nil): %v", err)
	}
}

// TestWaitingProgress: a device that waits to be tried again says so, and
// when.
func TestWaitingProgress(t *testing.T) {
	retry, until := time.UnixMilli(1_800_000_000_000), time.UnixMilli(1_800_086_400_000)
	p := progressOf(peerdrop.Event{Kind: peerdrop.EventState, Direction: peerdrop.Outgoing, State: multidevice.Waiting,
		Device: identity.DeviceID{1}, Retry: retry, Until: until, Err: peerdrop.ErrNoAnswer}, "Bob")
	if p.State != "waiting" || p.Terminal() || p.RetryAtMillis != retry.UnixMilli() || p.UntilMillis != until.UnixMilli() || p.Error == "" {
		t.Fatalf("%+v", p)
	}
}

// TestMobileSendFiles: a folder and a file in one offer, from a JSON
// array of paths; the receiving app is asked once and gets a folder.
func TestMobileSendFiles(t *testing.T) {
	boot := localDHT(t)
	alice, ra, aliceID := newMobile(t, "alice", boot)
	bob, rb, bobID := newMobile(t, "bob", boot)
	alice.AddContact(bobID, "Bob")
	bob.AddContact(aliceID, "Alice")
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	if err := bob.Start(); err != nil {
		t.Fatal(err)
	}
	sees(t, alice, "Bob")
	sees(t, bob, "Alice")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "Camera"), 0o700)
	_, a := testfile.Random(t, filepath.Join(dir, "Camera"), "a.jpg", 200<<10)
	_, b := testfile.Random(t, filepath.Join(dir, "Camera"), "b.jpg", 2<<20)
	_, c := testfile.Random(t, dir, "notes.txt", 10)
	paths, _ := json.Marshal([]string{filepath.Join(dir, "Camera"), filepath.Join(dir, "notes.txt")})
	if _, err := alice.SendFiles("Bob", "not json"); err == nil {
		t.Fatal("bad JSON accepted")
	}
	tr, err := alice.SendFiles("Bob", string(paths))
	if err != nil {
		t.Fatal(err)
	}
	o := rb.nextOffer(t)
	if o.Files != 3 || o.Tops != "Camera/\nnotes.txt" || o.Size != int64(len(a)+len(b)+len(c)) {
		t.Fatalf("offer %+v", o)
	}
	if err := bob.Accept(o.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := tr.Await(30_000); err != nil {
		t.Fatal(err)
	}
	got := waitFinal(t, rb, tr.ID())
	if got.State != "finished" || got.Path != filepath.Join(bob.cfg.Home, "Download", "Camera") {
		t.Fatalf("bob's transfer %+v", got)
	}
	testfile.Same(t, filepath.Join(got.Path, "a.jpg"), a)
	testfile.Same(t, filepath.Join(got.Path, "b.jpg"), b)
	testfile.Same(t, filepath.Join(bob.cfg.Home, "Download", "notes.txt"), c)
	_ = ra
}
