package proxy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/peerdrop/peerdrop/signaling"
)

// FuzzDecodeItem: the proxy's item decoder (a client's put, a proxy's get
// reply) never panics, and whatever it accepts is a verified item that
// encodes back to the same fields.
func FuzzDecodeItem(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	it, _ := signaling.NewItem(priv, []byte("q0"), 3, []byte("sealed"))
	good, _ := json.Marshal(toWire(it))
	f.Add(good)
	f.Add([]byte(`{"k":"","salt":null,"seq":-1,"v":"","sig":""}`))
	f.Add([]byte(`{"k":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := decodeItem(b)
		if err != nil {
			return
		}
		if !it.Verify() {
			t.Fatal("accepted an item that does not verify")
		}
		again, err := decodeItem(mustJSON(toWire(it)))
		if err != nil || again.Seq != it.Seq || !bytes.Equal(again.Value, it.Value) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseLine: a listen stream's lines (from the proxy) never panic the
// client, and only targets and items it asked for get through.
func FuzzParseLine(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	it, _ := signaling.NewItem(priv, []byte("q0"), 3, []byte("sealed"))
	w := toWire(it)
	ts := encodeTargets([][20]byte{it.Target()})
	l1, _ := json.Marshal(streamLine{Item: &w})
	l2, _ := json.Marshal(streamLine{Listening: &ts})
	f.Add(l1)
	f.Add(l2)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"listening":["zz"]}`))
	want := map[[20]byte]bool{it.Target(): true}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLine(b, want)
		if err != nil {
			return
		}
		for tg := range l.listening {
			if !want[tg] {
				t.Fatal("a target not asked for")
			}
		}
		if l.item != nil && (!l.item.Verify() || !want[l.item.Target()]) {
			t.Fatal("a bad item got through")
		}
	})
}

// FuzzParseAddr: addresses people type never panic the parser, and an
// accepted one parses again to itself.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"peerdrop-proxy://h:1#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "https://h", "h:443", "[::1]:1", "https://[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		b, err := ParseAddr(a.String())
		if err != nil || b != a {
			t.Fatalf("%q -> %v -> %v %v", s, a, b, err)
		}
	})
}
