package peerdrop

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/transfer"
)

func testDesc() ice.Description {
	return ice.Description{Ufrag: "Hq1vGN3Z", Pwd: "2V4gJrLk1yq0pWn7fXbM3sTe", Candidates: []ice.Candidate{
		{Foundation: "1", Type: ice.Host, TCPType: ice.Passive, Addr: netip.MustParseAddrPort("192.168.1.2:5000"), Priority: 2122252543}}}
}

func TestWire(t *testing.T) {
	id := transfer.NewID()
	for _, r := range []request{{kind: kindFile, desc: testDesc()}, {kind: kindReask, id: id, desc: testDesc()}} {
		b, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseRequest(b)
		if err != nil || got.kind != r.kind || got.id != r.id || got.desc.Ufrag != "Hq1vGN3Z" || len(got.desc.Candidates) != 1 {
			t.Fatalf("%c: %+v %v", r.kind, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {'X'}, {kindReask, 1, 2}, []byte("Fnot a description")} {
		if _, err := parseRequest(bad); !errors.Is(err, errBadPayload) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	a, _ := acceptAnswer(testDesc())
	if d, err := parseAnswer(a); err != nil || d.Pwd != "2V4gJrLk1yq0pWn7fXbM3sTe" {
		t.Fatalf("accept: %v", err)
	}
	_, err := parseAnswer(noAnswer(NoBusy, "too \x1b[31mmany"+strings.Repeat("!", 300)))
	var no *NoError
	if !errors.As(err, &no) || no.Code != NoBusy || strings.ContainsRune(no.Text, 0x1b) || len(no.Text) > maxNoText {
		t.Fatalf("no: %v", err)
	}
	if _, err := parseAnswer([]byte{kindNo}); !errors.Is(err, errBadPayload) {
		t.Fatalf("short no: %v", err)
	}
}

// FuzzWire feeds hostile payloads to both decoders of peer requests and
// answers: they never panic, and what they accept re-encodes.
func FuzzWire(f *testing.F) {
	r, _ := request{kind: kindReask, id: transfer.NewID(), desc: testDesc()}.marshal()
	f.Add(r)
	a, _ := acceptAnswer(testDesc())
	f.Add(a)
	f.Add(noAnswer(NoChanged, "gone"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := parseRequest(b); err == nil {
			if _, err := req.marshal(); err != nil {
				t.Fatalf("accepted request does not re-encode: %v", err)
			}
		}
		if d, err := parseAnswer(b); err == nil {
			if _, err := d.MarshalText(); err != nil {
				t.Fatalf("accepted answer does not re-encode: %v", err)
			}
		}
	})
}
