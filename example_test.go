package peerdrop_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/transfer"
)

// A device sends a file to every device of a contact and watches the
// aggregate and per-device progress.
func Example() {
	// Once: peerdrop.Init("/home/alice/.peerdrop", "laptop").
	node, err := peerdrop.Open(&peerdrop.Config{
		Home:      "/home/alice/.peerdrop",
		Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.10:6882")},
		OnEvent: func(e peerdrop.Event) {
			if e.Direction == peerdrop.Outgoing && e.Device.IsZero() {
				fmt.Printf("%s: %s %d/%d\n", e.Name, e.State, e.Bytes, e.Total)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	bob, err := identity.ParseAccountID("…Bob's account ID, as he shared it…")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := node.AddContact(bob, "Bob"); err != nil {
		log.Fatal(err)
	}
	out, err := node.SendFile(context.Background(), bob, "holiday.jpg")
	if err != nil {
		log.Fatal(err) // e.g. Bob's device list was not found
	}
	if err := out.Wait(context.Background()); err != nil {
		log.Fatal(err) // every device refused or failed, each with its reason
	}
	for _, d := range out.Devices() {
		fmt.Println(d.Name, d.State, d.Err)
	}
}

// A device receives files from its contacts, accepting small pictures
// automatically and asking about the rest.
func ExampleNode_Offers() {
	node, err := peerdrop.Open(&peerdrop.Config{
		Home:       "/home/bob/.peerdrop",
		LAN:        true, // find DHT nodes on the LAN by multicast
		AutoAccept: peerdrop.AcceptUpTo(20<<20, "image/"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	for in := range node.Offers() {
		o := in.Offer()
		if o.Size > 1<<30 {
			in.Refuse("too large for this phone")
			continue
		}
		in.Accept(transfer.Destination{}) // into Config.DownloadDir
		go func() {
			path, err := in.Wait(context.Background())
			fmt.Println(o.Name, "from", o.Contact, "saved as", path, err)
		}()
	}
}
