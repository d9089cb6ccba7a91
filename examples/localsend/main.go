// Command localsend sends a file between two freshly created identities
// over mutually authenticated TLS 1.3 on loopback TCP, using the identity,
// tlslink and transfer packages directly, and verifies the result.
//
//	go run ./examples/localsend [-size BYTES] [-file PATH]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/tlslink"
	"github.com/peerdrop/peerdrop/transfer"
)

func main() {
	size := flag.Int64("size", 64<<20, "size of the generated file, in bytes")
	file := flag.String("file", "", "send this file instead of a generated one")
	flag.Parse()
	if err := run(*size, *file); err != nil {
		fmt.Fprintln(os.Stderr, "localsend:", err)
		os.Exit(1)
	}
}

func newDevice(name string) (*identity.Device, error) {
	acct, err := identity.NewAccount(nil)
	if err != nil {
		return nil, err
	}
	dev, err := acct.NewDevice(nil, time.Now(), 0)
	if err == nil {
		fmt.Printf("%-5s account %s\n", name, acct.ID())
	}
	return dev, err
}

func run(size int64, src string) error {
	tmp, err := os.MkdirTemp("", "peerdrop-localsend")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if src == "" {
		src = filepath.Join(tmp, "generated.bin")
		data := make([]byte, size)
		rand.Read(data)
		if err := os.WriteFile(src, data, 0o600); err != nil {
			return err
		}
	}
	alice, err := newDevice("alice")
	if err != nil {
		return err
	}
	bob, err := newDevice("bob")
	if err != nil {
		return err
	}
	downloads := filepath.Join(tmp, "downloads")
	os.Mkdir(downloads, 0o700)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Bob: accept one connection, authenticate Alice, accept her offer.
	saved := make(chan string, 1)
	bobErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			bobErr <- err
			return
		}
		link, err := tlslink.Server(ctx, c, &tlslink.Config{Device: bob, PeerAccount: alice.Account(), PeerDevice: alice.ID()})
		if err != nil {
			bobErr <- err
			return
		}
		r, err := transfer.Receive(ctx, link, nil)
		if err != nil {
			bobErr <- err
			return
		}
		fmt.Printf("bob   offered %s\n", r.Offer())
		p, err := r.Accept(ctx, transfer.Destination{Dir: downloads})
		saved <- p
		bobErr <- err
	}()

	// Alice: dial Bob, authenticate him, send.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	link, err := tlslink.Client(ctx, c, &tlslink.Config{Device: alice, PeerAccount: bob.Account(), PeerDevice: bob.ID()})
	if err != nil {
		return err
	}
	cfg := &transfer.Config{ProgressInterval: 500 * time.Millisecond, OnEvent: func(e transfer.Event) {
		if e.Progress {
			fmt.Printf("alice %5.1f%%  %6.1f MB/s\n", 100*float64(e.Bytes)/float64(max(e.Total, 1)), e.Rate/1e6)
		} else {
			fmt.Printf("alice %s\n", e.State)
		}
	}}
	s, err := transfer.NewSender(link, transfer.Source{Path: src}, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		return err
	}
	if err := <-bobErr; err != nil {
		return err
	}
	elapsed := time.Since(start)
	p := <-saved
	want, _ := os.ReadFile(src)
	got, _ := os.ReadFile(p)
	if !bytes.Equal(want, got) {
		return fmt.Errorf("received file differs from the original")
	}
	fmt.Printf("bob   saved and verified %s: %d bytes in %v (%.0f MB/s)\n", filepath.Base(p), len(got), elapsed.Round(time.Millisecond), float64(len(got))/elapsed.Seconds()/1e6)
	return nil
}
