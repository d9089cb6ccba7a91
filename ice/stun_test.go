package ice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/pion/stun"
)

func TestPriorities(t *testing.T) {
	// RFC 8445 type preferences dominate; active before passive for hosts.
	hp := candidatePriority(Host, Passive, 8191)
	ha := candidatePriority(Host, Active, 8191)
	rp := candidatePriority(Relay, Passive, 8191)
	sp := candidatePriority(ServerReflexive, Passive, 8191)
	if !(ha > hp && hp > sp && sp > rp) {
		t.Fatalf("order: host active %d, host passive %d, srflx %d, relay %d", ha, hp, sp, rp)
	}
	if hp>>24 != 126 || hp&0xff != 255 {
		t.Fatalf("host passive priority %d: type-pref %d, component part %d", hp, hp>>24, hp&0xff)
	}
	// Pair priority is symmetric in who computes it, given the roles.
	if pairPriority(hp, rp) == pairPriority(rp, hp) {
		t.Fatal("the controlling side's candidate must break ties")
	}
	if pairPriority(ha, hp) < pairPriority(ha, rp) {
		t.Fatal("a host pair must outrank a relay pair")
	}
}

func TestRequestRoundTrip(t *testing.T) {
	m, err := newRequest("local", "remote", "0123456789abcdefghijkl", checkParams{
		priority: 1234, controlling: true, tieBreaker: 0xdeadbeef, useCandidate: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf [maxFrame]byte
	frame, err := readFrame(bytes.NewReader(appendFrame(nil, m.Raw)), &buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(frame)
	if err != nil {
		t.Fatal(err)
	}
	req, err := parseRequest(got)
	if err != nil {
		t.Fatal(err)
	}
	if req.localUfrag != "remote" || req.remoteUfrag != "local" || req.priority != 1234 ||
		!req.controlling || req.tieBreaker != 0xdeadbeef || !req.useCandidate {
		t.Fatalf("parsed %+v", req)
	}
	if err := checkIntegrity(got, "0123456789abcdefghijkl"); err != nil {
		t.Fatal(err)
	}
	if err := checkIntegrity(got, "0123456789abcdefghijkX"); err == nil {
		t.Fatal("integrity passed with the wrong password")
	}
}

func TestReadFrameBounds(t *testing.T) {
	var buf [maxFrame]byte
	for name, in := range map[string][]byte{
		"too long":  binary.BigEndian.AppendUint16(nil, maxFrame+1),
		"too short": binary.BigEndian.AppendUint16(nil, 19),
	} {
		if _, err := readFrame(bytes.NewReader(append(in, make([]byte, 2000)...)), &buf); !errors.Is(err, errFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 30, 1, 2}), &buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	// A frame is read exactly: the byte after it stays in the stream.
	m, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	r := bytes.NewReader(append(appendFrame(nil, m.Raw), 'X'))
	if _, err := readFrame(r, &buf); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "X" {
		t.Fatalf("left %q", rest)
	}
}

// FuzzFrames feeds arbitrary bytes to the STUN-over-TCP reader and the
// message checks every connection runs before trusting a peer.
func FuzzFrames(f *testing.F) {
	m, _ := newRequest("abcd", "efgh", "0123456789abcdefghijkl", checkParams{priority: 1, controlling: true, tieBreaker: 2})
	f.Add(appendFrame(nil, m.Raw))
	sw, _ := newSwitch("abcd", "efgh", "0123456789abcdefghijkl")
	f.Add(appendFrame(appendFrame(nil, m.Raw), sw.Raw))
	f.Add([]byte{0, 20, 0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf [maxFrame]byte
		for i := 0; i < 8; i++ {
			frame, err := readFrame(r, &buf)
			if err != nil {
				return
			}
			if len(frame) > maxFrame {
				t.Fatalf("frame of %d bytes", len(frame))
			}
			msg, err := decodeMessage(frame)
			if err != nil {
				continue
			}
			req, err := parseRequest(msg)
			if err != nil {
				continue
			}
			_ = checkIntegrity(req.msg, "0123456789abcdefghijkl")
		}
	})
}
