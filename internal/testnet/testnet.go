// Package testnet has network helpers shared by the tests of several
// packages. Everything it opens is on loopback.
package testnet

import (
	"net"
	"testing"
)

// TCPPair returns the two ends of a fresh loopback TCP connection. Both
// are closed when the test ends.
func TCPPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2 := <-ch
	if c2 == nil {
		c1.Close()
		t.Fatal("testnet: accept failed")
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}
