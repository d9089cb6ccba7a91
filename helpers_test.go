package peerdrop

import (
	"sync/atomic"

	"github.com/peerdrop/peerdrop/internal/testfile"

	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/signaling/dht"
	"github.com/peerdrop/peerdrop/transfer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// testNet is a local DHT of plain nodes on loopback that Nodes bootstrap
// from, or, from newMemNet, an in-memory transport they share.
type testNet struct {
	boot  []netip.AddrPort
	mem   *signaling.MemoryTransport
	quiet bool // the Nodes' events are not recorded (benchmarks of memory)
}

// newMemNet is a testNet whose Nodes signal through one in-memory
// transport (with notifications, as the DHT's listen extension gives):
// for tests of the Node's own logic, which need no DHT. The tests of the
// DHT path itself use newTestNet.
func newMemNet() *testNet {
	return &testNet{mem: &signaling.MemoryTransport{Notify: true}}
}

func newTestNet(t testing.TB, n int) *testNet {
	t.Helper()
	var tn testNet
	var first *dht.Node
	for i := 0; i < n; i++ {
		c := &dht.Config{Listen: loopback}
		if first != nil {
			c.Bootstrap = []netip.AddrPort{first.Addr()}
		}
		d, err := dht.New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if first == nil {
			first = d
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = d.Bootstrap(ctx)
			cancel()
		}
		tn.boot = append(tn.boot, d.Addr())
	}
	return &tn
}

// events records a Node's events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.all...)
}

type testNode struct {
	*Node
	home string
	cfg  Config
	ev   *events
}

// config is a loopback-only Node config with short timeouts.
func (tn *testNet) config(home string) Config {
	var tr signaling.Transport
	if tn.mem != nil {
		tr = tn.mem
	}
	return Config{
		Home:           home,
		Bootstrap:      tn.boot,
		Transport:      tr,
		DHTListen:      loopback,
		ICE:            ice.Config{ListenAddrs: []netip.AddrPort{loopback}, CheckTimeout: 3 * time.Second, RelayDelay: 300 * time.Millisecond},
		RequestTimeout: 5 * time.Second,
		ContactRefresh: 2 * time.Second,
		Transfer:       transfer.Config{ProgressInterval: 20 * time.Millisecond},
	}
}

func (tn *testNet) node(t testing.TB, name string, mod func(*Config)) *testNode {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if _, _, err := Init(home, name); err != nil {
		t.Fatal(err)
	}
	return tn.open(t, home, mod)
}

// join makes a new device of n's account.
func (tn *testNet) join(t testing.TB, n *testNode, name string, mod func(*Config)) *testNode {
	t.Helper()
	pw := []byte("correct horse battery staple")
	archive, err := n.ExportAccount(pw)
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), name)
	if _, _, err := Join(home, archive, pw, name); err != nil {
		t.Fatal(err)
	}
	return tn.open(t, home, mod)
}

func (tn *testNet) open(t testing.TB, home string, mod func(*Config)) *testNode {
	t.Helper()
	cfg := tn.config(home)
	if mod != nil {
		mod(&cfg)
	}
	ev := &events{}
	user := cfg.OnEvent
	cfg.OnEvent = func(e Event) {
		if !tn.quiet {
			ev.add(e)
		}
		if user != nil {
			user(e)
		}
	}
	n, err := Open(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &testNode{Node: n, home: home, cfg: cfg, ev: ev}
}

// befriend makes a and b contacts of each other (every device given).
func befriend(t testing.TB, a []*testNode, b []*testNode) {
	t.Helper()
	for _, x := range a {
		if _, err := x.AddContact(b[0].Account(), "b"); err != nil {
			t.Fatal(err)
		}
	}
	for _, y := range b {
		if _, err := y.AddContact(a[0].Account(), "a"); err != nil {
			t.Fatal(err)
		}
	}
}

// converge waits until sender sees all of the recipient's devices and
// every recipient device watches all of the sender's devices.
func converge(t testing.TB, senders []*testNode, recipients []*testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(from *testNode, to []*testNode) {
		for {
			devs, err := from.ContactDevices(ctx, to[0].Account())
			if err == nil && len(devs) == len(to) {
				if err := from.RefreshContacts(ctx); err == nil {
					return
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never saw %d devices of %s: %d, %v", from.DeviceName(), len(to), to[0].DeviceName(), len(devs), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, s := range senders {
		check(s, recipients)
	}
	for _, r := range recipients {
		check(r, senders)
	}
}

// file writes a random file of size bytes.
func file(t testing.TB, dir, name string, size int64) (string, []byte) {
	t.Helper()
	return testfile.Random(t, dir, name, size)
}

func sameFile(t testing.TB, path string, want []byte) {
	t.Helper()
	testfile.Same(t, path, want)
}

// sendAndWait sends src to the contact and waits for every device's end.
func sendAndWait(t testing.TB, ctx context.Context, from *testNode, to *testNode, src string) *OutgoingTransfer {
	t.Helper()
	out, err := from.SendFile(ctx, to.Account(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// nextOffer waits for an offer on n.
func nextOffer(t testing.TB, n *testNode, within time.Duration) *IncomingTransfer {
	t.Helper()
	select {
	case in := <-n.Offers():
		return in
	case <-time.After(within):
		t.Fatalf("%s: no offer within %v", n.DeviceName(), within)
		return nil
	}
}

// modFrom returns a modifier that reproduces c (for reopening a node).
func (c Config) modFrom() func(*Config) {
	return func(d *Config) {
		onEvent := d.OnEvent
		*d = c
		d.OnEvent = onEvent
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closesAt returns a Config change under which the node closes itself,
// in the background, at its first event that matches, holding that
// event's goroutine for hold meanwhile (so that it stops mid-transfer),
// and arm, which names the node once opened and returns a channel closed
// once it has closed.
func closesAt(match func(Event) bool, hold time.Duration) (mod func(*Config), arm func(*testNode) <-chan struct{}) {
	var stop atomic.Pointer[func()]
	mod = func(c *Config) {
		c.OnEvent = func(e Event) {
			if match(e) {
				if f := stop.Swap(nil); f != nil {
					go (*f)()
					time.Sleep(hold)
				}
			}
		}
	}
	arm = func(n *testNode) <-chan struct{} {
		closed := make(chan struct{})
		f := func() { n.Close(); close(closed) }
		stop.Store(&f)
		return closed
	}
	return mod, arm
}
