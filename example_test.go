package peerdrop_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// exampleNode creates a device of a new account in dir and opens it on
// tr, listening on loopback only. A real device gives Bootstrap (DHT
// nodes), LAN or Global instead of Transport, and listens everywhere.
func exampleNode(dir, name string, tr signaling.Transport, mod func(*peerdrop.Config)) *peerdrop.Node {
	home := filepath.Join(dir, name)
	if _, _, err := peerdrop.Init(home, name); err != nil {
		log.Fatal(err)
	}
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	cfg := &peerdrop.Config{Home: home, Transport: tr, ICE: ice.Config{ListenAddrs: []netip.AddrPort{lo}}}
	if mod != nil {
		mod(cfg)
	}
	n, err := peerdrop.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	return n
}

// sendWhenFound sends paths (one offer) to contact, looking the
// contact's devices up again while their list is not published yet (a
// device that just started).
func sendWhenFound(n *peerdrop.Node, contact *peerdrop.Node, paths ...string) *peerdrop.OutgoingTransfer {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		out, err := n.SendFiles(ctx, contact.Account(), paths)
		if err == nil {
			return out
		}
		if !errors.Is(err, peerdrop.ErrNotFound) || ctx.Err() != nil {
			log.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Alice sends a file to every device of her contact Bob, and sees the
// aggregate and each device's result. Here both devices run in one
// process and signal through an in-memory transport, so the example runs
// offline; the file goes over a real TCP connection with TLS 1.3.
func Example() {
	dir, err := os.MkdirTemp("", "peerdrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dht := &signaling.MemoryTransport{Notify: true} // stands in for the DHT

	alice := exampleNode(dir, "alice-laptop", dht, nil)
	defer alice.Close()
	bob := exampleNode(dir, "bob-phone", dht, func(c *peerdrop.Config) {
		c.AutoAccept = peerdrop.AcceptUpTo(20<<20, "image/") // small pictures, without asking
	})
	defer bob.Close()
	// Contacts are exchanged out of band (the CLI's contact strings).
	if _, err := alice.AddContact(bob.Account(), "Bob"); err != nil {
		log.Fatal(err)
	}
	if _, err := bob.AddContact(alice.Account(), "Alice"); err != nil {
		log.Fatal(err)
	}

	src := filepath.Join(dir, "holiday.jpg")
	if err := os.WriteFile(src, []byte("not really a JPEG"), 0o600); err != nil {
		log.Fatal(err)
	}
	out := sendWhenFound(alice, bob, src)
	if err := out.Wait(context.Background()); err != nil {
		log.Fatal(err) // every device refused or failed, each with its reason
	}
	fmt.Println("aggregate:", out.Status().State)
	for _, d := range out.Devices() {
		fmt.Println(d.Name+":", d.State, d.Bytes, "bytes")
	}
	got, err := os.ReadFile(filepath.Join(dir, "bob-phone", "downloads", "holiday.jpg"))
	fmt.Printf("Bob has %q %v\n", got, err)
	// Output:
	// aggregate: finished
	// bob-phone: finished 17 bytes
	// Bob has "not really a JPEG" <nil>
}

// A device decides each offer itself: it refuses large files and accepts
// the others into a directory of its choice.
func ExampleNode_Offers() {
	dir, err := os.MkdirTemp("", "peerdrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dht := &signaling.MemoryTransport{Notify: true}
	alice := exampleNode(dir, "alice", dht, nil)
	defer alice.Close()
	bob := exampleNode(dir, "bob", dht, nil)
	defer bob.Close()
	_, _ = alice.AddContact(bob.Account(), "Bob")
	_, _ = bob.AddContact(alice.Account(), "Alice")

	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o700); err != nil {
		log.Fatal(err)
	}
	saved := make(chan string, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			var in *peerdrop.IncomingTransfer
			select {
			case in = <-bob.Offers():
			case <-done:
				return
			}
			o := in.Offer()
			if o.Size > 1<<10 {
				_ = in.Refuse("too large for this phone")
				continue
			}
			_ = in.Accept(transfer.Destination{Dir: inbox})
			path, err := in.Wait(context.Background())
			saved <- fmt.Sprint(o.Name, " from ", o.Contact, " saved as ", filepath.Base(path), " ", err)
		}
	}()

	for _, f := range []struct {
		name string
		size int
	}{{"note.txt", 12}, {"film.mkv", 4096}} {
		src := filepath.Join(dir, f.name)
		_ = os.WriteFile(src, make([]byte, f.size), 0o600)
		out := sendWhenFound(alice, bob, src)
		err := out.Wait(context.Background())
		fmt.Println(f.name, "→", out.Status().State, err)
		if err == nil {
			fmt.Println(<-saved)
		}
	}
	// Output:
	// note.txt → finished <nil>
	// note.txt from Alice saved as note.txt <nil>
	// film.mkv → refused refused: bob: refused (transfer: refused by peer: too large for this phone)
}

// Alice sends a folder and a file as one offer: Bob's device decides once
// (here AutoAccept sees the number of files and their total size), and
// receives them in a new folder of its own, every file verified.
func ExampleNode_SendFiles() {
	dir, err := os.MkdirTemp("", "peerdrop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dht := &signaling.MemoryTransport{Notify: true}
	alice := exampleNode(dir, "alice", dht, nil)
	defer alice.Close()
	bob := exampleNode(dir, "bob", dht, func(c *peerdrop.Config) {
		c.AutoAccept = func(o peerdrop.Offer) bool {
			fmt.Printf("Bob's device is offered %s: %d files, %d bytes\n", o.Name, o.Files, o.Size)
			return o.Files <= 100 && o.Size <= 1<<30
		}
	})
	defer bob.Close()
	_, _ = alice.AddContact(bob.Account(), "Bob")
	_, _ = bob.AddContact(alice.Account(), "Alice")

	trip := filepath.Join(dir, "trip")
	_ = os.MkdirAll(filepath.Join(trip, "day 1"), 0o700)
	_ = os.WriteFile(filepath.Join(trip, "day 1", "beach.jpg"), []byte("sand"), 0o600)
	_ = os.WriteFile(filepath.Join(trip, "notes.txt"), []byte("sunny"), 0o600)
	plan := filepath.Join(dir, "plan.pdf")
	_ = os.WriteFile(plan, []byte("%PDF"), 0o600)

	out := sendWhenFound(alice, bob, trip, plan)
	if err := out.Wait(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("aggregate:", out.Status().State)
	got := filepath.Join(dir, "bob", "downloads")
	_ = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(got, p)
			fmt.Printf("%s: %q\n", filepath.ToSlash(rel), b)
		}
		return nil
	})
	// Output:
	// Bob's device is offered trip/ and 1 more: 3 files, 13 bytes
	// aggregate: finished
	// plan.pdf: "%PDF"
	// trip/day 1/beach.jpg: "sand"
	// trip/notes.txt: "sunny"
}
