package dht

import (
	"context"
	"crypto/ed25519"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestMarkPacket: a query or a reply gets "ro": 1 at its top level and
// keeps every other field; errors and garbage pass unchanged.
func TestMarkPacket(t *testing.T) {
	q, err := bencode.Marshal(krpc.Msg{T: "aa", Y: "q", Q: "get", A: &krpc.MsgArgs{ID: krpc.ID{1}, Target: krpc.ID{2}, Salt: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	var m krpc.Msg
	if err := bencode.Unmarshal(markPacket(q), &m); err != nil {
		t.Fatal(err)
	}
	if !m.ReadOnly || m.Q != "get" || m.T != "aa" || m.A == nil || m.A.Target != (krpc.ID{2}) || string(m.A.Salt) != "s" {
		t.Fatalf("marked query %+v", m)
	}
	r, _ := bencode.Marshal(krpc.Msg{T: "aa", Y: "r", R: &krpc.Return{ID: krpc.ID{3}, Token: ptr("tok")}})
	m = krpc.Msg{}
	if err := bencode.Unmarshal(markPacket(r), &m); err != nil || !m.ReadOnly || m.R == nil || *m.R.Token != "tok" {
		t.Fatalf("marked reply %+v, %v", m, err)
	}
	e, _ := bencode.Marshal(krpc.Msg{T: "aa", Y: "e", E: &krpc.Error{Code: 201, Msg: "x"}})
	for _, b := range [][]byte{e, []byte("not bencode 1:y1:q"), nil} {
		if got := markPacket(b); string(got) != string(b) {
			t.Fatalf("markPacket(%q) = %q", b, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestReadOnlyObserve: read-only until the first reply; a reply that saw
// us at an address none of our interfaces has means a NAT; loopback peers
// and our own addresses do not.
func TestReadOnlyObserve(t *testing.T) {
	r := &readOnly{mode: ReadOnlyBehindNAT}
	if !r.on() {
		t.Fatal("not read-only before the first reply")
	}
	peer := netip.MustParseAddr("192.0.2.7")
	r.observe(netip.MustParseAddr("127.0.0.1"), krpc.NodeAddr{IP: netip.MustParseAddr("203.0.113.5").AsSlice()})
	if r.on() {
		t.Fatal("a loopback peer's view turned read-only on")
	}
	r.observe(peer, krpc.NodeAddr{IP: netip.MustParseAddr("127.0.0.1").AsSlice()})
	if r.on() {
		t.Fatal("our own address turned read-only on")
	}
	r.observe(peer, krpc.NodeAddr{IP: netip.MustParseAddr("203.0.113.5").AsSlice(), Port: 4000})
	if !r.on() {
		t.Fatal("a NAT's address did not turn read-only on")
	}
	r.natAt.Store(time.Now().Add(-natFor - time.Second).UnixNano())
	if r.on() {
		t.Fatal("still read-only after natFor without a NAT seen")
	}
	if (&readOnly{mode: ReadOnlyAlways}).on() != true || (&readOnly{}).on() {
		t.Fatal("Always/Never modes")
	}
	// sample parses real replies.
	b, _ := bencode.Marshal(krpc.Msg{T: "aa", Y: "r", R: &krpc.Return{ID: krpc.ID{3}}, IP: krpc.NodeAddr{IP: netip.MustParseAddr("203.0.113.9").AsSlice(), Port: 1}})
	r2 := &readOnly{mode: ReadOnlyBehindNAT}
	r2.sample(netip.AddrPortFrom(peer, 6881), b)
	if !r2.on() {
		t.Fatal("sample missed the reply's ip")
	}
}

// TestReadOnlyNodeNotReferred: a read-only node's queries are answered,
// but it is neither in the other node's routing table nor referred by
// it; a full node is both.
func TestReadOnlyNodeNotReferred(t *testing.T) {
	nodes := testDHT(t, 2, nil) // a full node and one that joined it
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ro, err := New(&Config{Listen: loopback, Bootstrap: []netip.AddrPort{nodes[0].Addr()}, ReadOnly: ReadOnlyAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the ping-back of a full querier would land now
	var inTable, fullIn bool
	for _, n := range nodes[0].srv.Nodes() {
		ap := n.Addr.ToNodeAddrPort().AddrPort
		inTable = inTable || ap == ro.Addr()
		fullIn = fullIn || ap == nodes[1].Addr()
	}
	if inTable {
		t.Fatal("the read-only node is in the other node's routing table")
	}
	if !fullIn {
		t.Fatal("the full node is not in the table: the check proves nothing")
	}
	// It still stores at the full nodes and is notified of puts there.
	_, priv, _ := ed25519.GenerateKey(nil)
	key := [32]byte(priv.Public().(ed25519.PublicKey))
	salt := []byte("q0")
	it, _ := signaling.NewItem(priv, salt, 1, []byte("one"))
	if err := ro.Put(ctx, it); err != nil {
		t.Fatal(err)
	}
	sub := ro.Subscribe()
	defer sub.Close()
	target := signaling.Target(key, salt)
	sub.Set([][20]byte{target})
	waitFor(t, 5*time.Second, "a live subscription of the read-only node", func() bool { return sub.Listening(target) })
	it2, _ := signaling.NewItem(priv, salt, 2, []byte("two"))
	if err := nodes[1].Put(ctx, it2); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case got := <-sub.Updates():
			if got.Seq == 2 {
				return
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the read-only node was not notified of a put")
		}
	}
}
