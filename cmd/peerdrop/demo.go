package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling/dht"
)

func (a *app) demoCommand() *cobra.Command {
	var size int64
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Send a file from Alice to Bob's two devices, all on loopback, and verify it",
		Long: `demo runs the whole stack on this machine and nothing else: a small DHT on
127.0.0.1, Alice, and Bob with two devices (a laptop and a phone), in a temporary
directory. Alice sends a generated file to Bob; both of Bob's devices receive it
over direct TCP with TLS 1.3; the bars show each device and the aggregate. The
demo then checks both copies byte for byte and removes everything. No
configuration, no network beyond loopback, a few seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 0 || size > 16<<30 {
				return usageErr("--size %d: between 0 and 16 GiB", size)
			}
			return a.demo(size, keep)
		},
	}
	c.Flags().Int64Var(&size, "size", 32<<20, "size of the generated file, in bytes")
	c.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory (homes, received files) for a look")
	return c
}

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// demoPeer is one device of the demo.
type demoPeer struct {
	label string
	home  string
	inbox string
	node  *peerdrop.Node
}

func (a *app) demo(size int64, keep bool) error {
	begin := time.Now()
	tmp, err := os.MkdirTemp("", "peerdrop-demo-")
	if err != nil {
		return err
	}
	if keep {
		defer a.notef("The demo's files are in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Minute)
	defer cancel()

	// A DHT of two plain nodes on loopback, for the devices to meet.
	boot, closeDHT, err := demoDHT(ctx)
	if err != nil {
		return err
	}
	defer closeDHT()
	a.notef("DHT of %d nodes on loopback: %v\n", len(boot), boot)

	// Identities: Alice; Bob's laptop, then his phone joining his account.
	alice := &demoPeer{label: "Alice", home: filepath.Join(tmp, "alice")}
	laptop := &demoPeer{label: "Bob's laptop", home: filepath.Join(tmp, "bob-laptop")}
	phone := &demoPeer{label: "Bob's phone", home: filepath.Join(tmp, "bob-phone")}
	aliceID, bobID, err := demoIdentities(alice, laptop, phone)
	if err != nil {
		return err
	}
	a.notef("Alice %s; Bob %s with 2 devices (laptop, phone)\n", aliceID.Short(), bobID.Short())

	// Open the three devices; Bob's accept everything from contacts.
	disp := a.newDisplay(func(id identity.AccountID) string {
		if id == bobID {
			return "Bob"
		}
		return "Alice"
	})
	defer disp.close()
	closeNodes, err := a.demoOpen(ctx, boot, disp.event, alice, laptop, phone)
	defer closeNodes()
	if err != nil {
		return err
	}
	if err := demoMeet(ctx, alice, laptop, phone, aliceID, bobID); err != nil {
		return err
	}

	// The file.
	src := filepath.Join(tmp, "holiday-video.bin")
	sum, err := writeRandom(src, size)
	if err != nil {
		return err
	}
	a.notef("Alice sends %s (%s) to Bob\n", filepath.Base(src), humanBytes(size))
	start := time.Now()
	out, err := alice.node.SendFile(ctx, bobID, src)
	if err != nil {
		return err
	}
	if !a.untilDone(out.Done(), out.Cancel) {
		return errInterrupted
	}
	err = out.Wait(ctx)
	took := time.Since(start)
	disp.close()
	if err != nil {
		return explain("Bob", filepath.Base(src), err)
	}

	checked, err := a.demoVerify([]*demoPeer{laptop, phone}, src, sum, size)
	if err != nil {
		return err
	}
	for _, d := range out.Devices() {
		if d.State != multidevice.Finished {
			return fmt.Errorf("device %s: %v (%v)", d.Name, d.State, d.Err)
		}
	}
	rate := float64(size) / took.Seconds()
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "demo", "ok": true, "transfer": out.ID(), "bytes": size, "seconds": took.Seconds(),
			"rate": rate, "verified": checked, "total_seconds": time.Since(begin).Seconds()})
		return nil
	}
	a.printf("Demo passed: %s to 2 devices in %.2fs (%s/s each), both copies verified; %.1fs in all, nothing left behind.\n",
		humanBytes(size), took.Seconds(), humanBytes(int64(rate)), time.Since(begin).Seconds())
	return nil
}

// demoOpen opens the devices on loopback, Alice's with the display and
// Bob's accepting everything from contacts; closeNodes closes those open.
func (a *app) demoOpen(ctx context.Context, boot []netip.AddrPort, show func(peerdrop.Event), alice *demoPeer, bobs ...*demoPeer) (closeNodes func(), err error) {
	var open []*peerdrop.Node
	closeNodes = func() {
		for _, n := range open {
			n.Close()
		}
	}
	for _, p := range append([]*demoPeer{alice}, bobs...) {
		p.inbox = filepath.Join(p.home, "received")
		cfg := &peerdrop.Config{Home: p.home, Bootstrap: boot, DHTListen: loopback, DownloadDir: p.inbox,
			ICE:            ice.Config{ListenAddrs: []netip.AddrPort{loopback}},
			ContactRefresh: 2 * time.Second, Logger: a.log}
		if p == alice {
			cfg.OnEvent = show
		} else {
			cfg.AutoAccept = func(peerdrop.Offer) bool { return true }
		}
		if p.node, err = peerdrop.Open(cfg); err != nil {
			return closeNodes, err
		}
		open = append(open, p.node)
	}
	for _, p := range append([]*demoPeer{alice}, bobs...) {
		if _, err := p.node.PublishDevices(ctx); err != nil {
			return closeNodes, fmt.Errorf("%s: publish devices: %w", p.label, err)
		}
	}
	return closeNodes, nil
}

// demoMeet waits until Alice sees Bob's two devices and each of them
// sees Alice.
func demoMeet(ctx context.Context, alice, laptop, phone *demoPeer, aliceID, bobID identity.AccountID) error {
	if err := meet(ctx, alice.node, bobID, 2); err != nil {
		return err
	}
	for _, p := range []*demoPeer{laptop, phone} {
		if err := meet(ctx, p.node, aliceID, 1); err != nil {
			return err
		}
	}
	return nil
}

// demoDHT starts a DHT of two plain nodes on loopback; close stops them.
func demoDHT(ctx context.Context) (boot []netip.AddrPort, close func(), err error) {
	var nodes []*dht.Node
	close = func() {
		for _, d := range nodes {
			d.Close()
		}
	}
	for i := 0; i < 2; i++ {
		d, err := dht.New(&dht.Config{Listen: loopback, Bootstrap: boot})
		if err != nil {
			close()
			return nil, nil, err
		}
		nodes = append(nodes, d)
		if i > 0 {
			if err := d.Bootstrap(ctx); err != nil {
				close()
				return nil, nil, err
			}
		}
		boot = append(boot, d.Addr())
	}
	return boot, close, nil
}

// demoIdentities creates Alice's account and Bob's, with the laptop's
// device, then the phone joining Bob's account from an export; Alice and
// Bob are contacts of each other.
func demoIdentities(alice, laptop, phone *demoPeer) (aliceID, bobID identity.AccountID, err error) {
	if aliceID, _, err = peerdrop.Init(alice.home, "alice-desktop"); err != nil {
		return
	}
	if bobID, _, err = peerdrop.Init(laptop.home, "laptop"); err != nil {
		return
	}
	if err = addContact(alice.home, bobID, "Bob"); err != nil {
		return
	}
	if err = addContact(laptop.home, aliceID, "Alice"); err != nil {
		return
	}
	st, err := peerdrop.OpenStore(laptop.home)
	if err != nil {
		return
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	archive, err := st.Export(pw, &identity.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1})
	if err != nil {
		return
	}
	_, _, err = peerdrop.Join(phone.home, archive, pw, "phone")
	return
}

// demoVerify checks every received copy against the source's SHA-256,
// independently of the library, and returns the peers checked.
func (a *app) demoVerify(peers []*demoPeer, src string, sum []byte, size int64) ([]string, error) {
	var checked []string
	for _, p := range peers {
		got := filepath.Join(p.inbox, filepath.Base(src))
		s, err := fileSum(got)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.label, err)
		}
		if !bytes.Equal(s, sum) {
			return nil, fmt.Errorf("%s: %s differs from the source", p.label, got)
		}
		checked = append(checked, p.label)
		a.notef("%s: %s received, SHA-256 %x… matches the source\n", p.label, humanBytes(size), sum[:8])
	}
	return checked, nil
}

func addContact(home string, id identity.AccountID, name string) error {
	st, err := peerdrop.OpenStore(home)
	if err != nil {
		return err
	}
	_, err = st.AddContact(id, name)
	return err
}

// meet waits until n sees want devices of the contact and watches them.
func meet(ctx context.Context, n *peerdrop.Node, contact identity.AccountID, want int) error {
	for {
		devs, err := n.ContactDevices(ctx, contact)
		if err == nil && len(devs) == want {
			if err = n.RefreshContacts(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("devices never met: %d of %d found", len(devs), want), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeRandom writes size random bytes to path and returns their SHA-256.
func writeRandom(path string, size int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		f.Close()
		return nil, err
	}
	return h.Sum(nil), f.Close()
}

func fileSum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
