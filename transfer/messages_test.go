package transfer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// goldenFrames are fixed frames whose exact bytes are pinned in
// testdata/golden: a change to the wire format shows up as a diff.
func goldenFrames() map[string][]byte {
	id, _ := ParseID("00112233445566778899aabbccddeeff")
	o := &Offer{ID: id, Name: "holiday.jpg", Size: 123456, MediaType: "image/jpeg", Digest: BLAKE3, Metadata: map[string]string{"a": "1", "b": "two"}}
	frame := func(t frameType, p []byte) []byte { return append(appendFrameHeader(nil, t, len(p)), p...) }
	sum := bytes.Repeat([]byte{0xab}, 32)
	return map[string][]byte{
		"hello":  appendHello(nil),
		"header": frame(frameHeader, appendHeader(nil, o)),
		"go":     frame(frameGo, appendGo(nil, 65536)),
		"refuse": frame(frameRefuse, appendRefuse(nil, "no thanks")),
		"cancel": frame(frameCancel, appendCancel(nil, CancelTimeout, "stalled")),
		"data":   frame(frameData, []byte("hello")),
		"end":    frame(frameEnd, appendEnd(nil, BLAKE3, sum)),
		"ack":    frame(frameAck, appendAck(nil, ackMismatch, "digest mismatch")),
	}
}

func TestGoldenFrames(t *testing.T) {
	for name, got := range goldenFrames() {
		path := filepath.Join("testdata", "golden", name+".hex")
		if *update {
			os.WriteFile(path, []byte(hex.Dump(got)), 0o644)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenFrames -update)", err)
		}
		if hex.Dump(got) != string(want) {
			t.Errorf("%s frame changed:\ngot\n%s\nwant\n%s", name, hex.Dump(got), want)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	g := goldenFrames()
	br := func(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
	typ, p, err := readFrame(br(g["header"]), nil)
	if err != nil || typ != frameHeader {
		t.Fatal(typ, err)
	}
	o, err := parseHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &Offer{Name: "holiday.jpg", Size: 123456, MediaType: "image/jpeg", Digest: BLAKE3, Metadata: map[string]string{"a": "1", "b": "two"}}
	want.ID, _ = ParseID("00112233445566778899aabbccddeeff")
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got %+v", o)
	}
	_, p, _ = readFrame(br(g["go"]), nil)
	if off, err := parseGo(p); err != nil || off != 65536 {
		t.Fatal(off, err)
	}
	_, p, _ = readFrame(br(g["cancel"]), nil)
	if c, r, err := parseCancel(p); err != nil || c != CancelTimeout || r != "stalled" {
		t.Fatal(c, r, err)
	}
	_, p, _ = readFrame(br(g["ack"]), nil)
	if st, m, err := parseAck(p); err != nil || st != ackMismatch || m != "digest mismatch" {
		t.Fatal(st, m, err)
	}
}

func TestHeaderRejects(t *testing.T) {
	ok := appendHeader(nil, testOffer(5))
	isProto := func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }
	cases := map[string][]byte{
		"truncated":    ok[:len(ok)-1],
		"trailing":     append(append([]byte(nil), ok...), 0),
		"bad digest":   func() []byte { b := append([]byte(nil), ok...); b[24] = 9; return b }(),
		"huge size":    func() []byte { b := append([]byte(nil), ok...); b[16] = 0x80; return b }(),
		"long name":    appendHeader(nil, &Offer{Name: strings.Repeat("a", MaxNameLength+1), Digest: BLAKE3}),
		"bad utf8":     appendHeader(nil, &Offer{Name: "\xff\xfe", Digest: BLAKE3}),
		"dup metadata": append(append(append([]byte(nil), ok[:len(ok)-1]...), 2), 1, 'k', 0, 0, 1, 'k', 0, 0),
		"empty key":    append(append([]byte(nil), ok[:len(ok)-1]...), 1, 0, 0, 0),
		"many entries": append(append([]byte(nil), ok[:len(ok)-1]...), MaxMetadataEntries+1),
	}
	for name, b := range cases {
		if _, err := parseHeader(b); !isProto(err) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	cases := map[string]string{
		"photo.jpg":                          "photo.jpg",
		"../../etc/passwd":                   "etc_passwd",
		`..\..\windows\system.ini`:           "windows_system.ini",
		"/absolute/path.txt":                 "absolute_path.txt",
		`C:\Users\x\a.txt`:                   "C__Users_x_a.txt",
		"..":                                 "file",
		".":                                  "file",
		"":                                   "file",
		"...hidden":                          "hidden",
		"trailing. . ":                       "trailing",
		"a\x00b\nc\x1bd.txt":                 "abcd.txt",
		"evil\u202egpj.exe":                  "evilgpj.exe",
		"CON":                                "_CON",
		"nul.txt":                            "_nul.txt",
		"com1.log":                           "_com1.log",
		"console.txt":                        "console.txt",
		"what?<>|*\".txt":                    "what______.txt",
		"\xff\xfeinvalid.txt":                "invalid.txt",
		"résumé.pdf":                         "résumé.pdf",
		strings.Repeat("a", 300) + ".tar.gz": strings.Repeat("a", 240-3) + ".gz",
	}
	for in, want := range cases {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := SanitizeName(strings.Repeat("é", 200))
	if len(long) > MaxSafeNameBytes || !strings.HasPrefix(long, "é") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("long multibyte name badly cut: %d bytes", len(long))
	}
}

func TestNumberedName(t *testing.T) {
	for in, want := range map[string]string{"a.txt": "a (3).txt", "noext": "noext (3)", ".bashrc": ".bashrc (3)"} {
		if got := numberedName(in, 3); got != want {
			t.Errorf("numberedName(%q) = %q", in, got)
		}
	}
}

// FuzzFrames feeds arbitrary bytes to every decoder of peer input.
func FuzzFrames(f *testing.F) {
	for _, b := range goldenFrames() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for {
			typ, p, err := readFrame(r, buf)
			if err != nil {
				return
			}
			if len(p) > MaxDataFrame {
				t.Fatalf("payload of %d bytes", len(p))
			}
			switch typ {
			case frameHeader:
				if o, err := parseHeader(p); err == nil {
					// Accepted headers re-encode to the same bytes.
					if again := appendHeader(nil, o); !bytes.Equal(again, p) {
						t.Fatalf("header does not round-trip")
					}
					if n := SanitizeName(o.Name); n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) || len(n) > MaxSafeNameBytes {
						t.Fatalf("unsafe name %q from %q", n, o.Name)
					}
				}
			case frameGo:
				parseGo(p)
			case frameRefuse:
				parseRefuse(p)
			case frameCancel:
				parseCancel(p)
			case frameEnd:
				parseEnd(p)
			case frameAck:
				parseAck(p)
			}
		}
	})
}

// FuzzReceiver plays arbitrary bytes as the sender's stream against a
// real Receiver that accepts everything: it must never panic, and may
// publish a file only when the stream was a valid transfer.
func FuzzReceiver(f *testing.F) {
	g := goldenFrames()
	valid := append(appendHello(nil), g["header"]...)
	f.Add(valid)
	f.Add(append(valid, g["data"]...))
	f.Add([]byte("PDXF\x01\x04\x00\x00\x00\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		dir := t.TempDir()
		a, b := net_pipe(t)
		go func() {
			a.Write(stream)
			a.Close()
		}()
		go func() { // discard what the receiver says
			var buf [512]byte
			for {
				if _, err := a.Read(buf[:]); err != nil {
					return
				}
			}
		}()
		cfg := fastCfg()
		cfg.IdleTimeout = 100 * 1e6
		cfg.LingerTimeout = 10 * 1e6
		r, err := Receive(t.Context(), b, cfg)
		if err != nil {
			return
		}
		path, err := r.Accept(t.Context(), Destination{Dir: dir})
		if err != nil {
			return
		}
		// Published: the stream must hold an END whose digest matches the
		// saved bytes, which must have the announced size.
		got, _ := os.ReadFile(path)
		if int64(len(got)) != r.Offer().Size {
			t.Fatalf("published %d bytes, header announced %d", len(got), r.Offer().Size)
		}
		h := r.Offer().Digest.New()
		h.Write(got)
		if !bytes.Contains(stream, h.Sum(nil)) {
			t.Fatalf("published a file whose digest is not in the stream")
		}
	})
}
