package ice

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// typical is a host with IPv4 and IPv6, a reflexive address and a relay:
// the description signaling has to carry.
func typical() Description {
	ap := netip.MustParseAddrPort
	var cands []Candidate
	add := func(t CandidateType, tcp TCPType, addr, rel string, other uint32) {
		c := Candidate{Type: t, TCPType: tcp, Addr: ap(addr), Priority: candidatePriority(t, tcp, other)}
		if rel != "" {
			c.Related = ap(rel)
		}
		c.Foundation = string(rune('1' + len(cands)))
		cands = append(cands, c)
	}
	add(Host, Passive, "192.168.178.23:50123", "", 4095)
	add(Host, Active, "192.168.178.23:9", "", 4095)
	add(Host, Passive, "[2a02:8109:b6c0:1a2b:3c4d:5e6f:7a8b:9c0d]:50124", "", 8191)
	add(Host, Active, "[2a02:8109:b6c0:1a2b:3c4d:5e6f:7a8b:9c0d]:9", "", 8191)
	add(ServerReflexive, Active, "203.0.113.77:9", "", 4095)
	add(Relay, Passive, "198.51.100.10:61234", "203.0.113.77:40512", 4095)
	ufrag, pwd := newCredentials()
	return Description{Ufrag: ufrag, Pwd: pwd, Candidates: cands}
}

func TestDescriptionRoundTrip(t *testing.T) {
	d := typical()
	text, err := d.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("typical description (IPv4 + IPv6 host, srflx, relay): %d bytes\n%s", len(text), text)
	if len(text) > 700 {
		t.Errorf("%d bytes: signaling needs it under 700", len(text))
	}
	got, err := ParseDescription(text)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalText()
	if !bytes.Equal(text, again) {
		t.Fatalf("round trip changed the text:\n%s\n%s", text, again)
	}
	var u Description
	if err := u.UnmarshalText(text); err != nil || u.Ufrag != d.Ufrag || len(u.Candidates) != len(d.Candidates) {
		t.Fatalf("UnmarshalText: %v %+v", err, u)
	}
}

func TestParseCandidateSyntax(t *testing.T) {
	// Lines in the syntax of RFC 6544 section 4.5 examples and other
	// implementations: extension attributes in any order, CRLF, generation.
	text := "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n" +
		"a=candidate:1 1 TCP 2128609279 10.0.1.1 9 typ host tcptype active\r\n" +
		"a=candidate:2 1 TCP 2124414975 10.0.1.1 8998 typ host tcptype passive generation 0\r\n" +
		"a=candidate:3 1 UDP 2130706431 10.0.1.1 8998 typ host\r\n" + // UDP: skipped
		"a=candidate:4 2 TCP 2124414974 10.0.1.1 8999 typ host tcptype passive\r\n" + // RTCP: skipped
		"a=candidate:5 1 tcp 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998 tcptype passive\r\n" +
		"a=ice-options:trickle\r\n"
	d, err := ParseDescription([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Candidates) != 3 {
		t.Fatalf("got %d candidates, want 3: %+v", len(d.Candidates), d.Candidates)
	}
	if c := d.Candidates[2]; c.Type != ServerReflexive || c.Related != netip.MustParseAddrPort("10.0.1.1:8998") || c.TCPType != Passive {
		t.Errorf("srflx parsed as %+v", c)
	}
}

func TestParseDescriptionRejects(t *testing.T) {
	const head = "a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\n"
	for name, text := range map[string]string{
		"empty":            "",
		"no ufrag":         "a=ice-pwd:0123456789abcdefghijkl\n",
		"short pwd":        "a=ice-ufrag:abcd\na=ice-pwd:short\n",
		"bad ufrag chars":  "a=ice-ufrag:ab:cd\na=ice-pwd:0123456789abcdefghijkl\n",
		"two ufrags":       head + "a=ice-ufrag:efgh\n",
		"not an attribute": head + "hello\n",
		"hostname":         head + "a=candidate:1 1 tcp 1 example.com 80 typ host tcptype passive\n",
		"mdns":             head + "a=candidate:1 1 tcp 1 1f4712db-ea17-4bcf.local 80 typ host tcptype passive\n",
		"zone":             head + "a=candidate:1 1 tcp 1 fe80::1%eth0 80 typ host tcptype passive\n",
		"port 0 passive":   head + "a=candidate:1 1 tcp 1 192.0.2.1 0 typ host tcptype passive\n",
		"port too big":     head + "a=candidate:1 1 tcp 1 192.0.2.1 65536 typ host tcptype passive\n",
		"no tcptype":       head + "a=candidate:1 1 tcp 1 192.0.2.1 80 typ host\n",
		"bad tcptype":      head + "a=candidate:1 1 tcp 1 192.0.2.1 80 typ host tcptype sideways\n",
		"bad type":         head + "a=candidate:1 1 tcp 1 192.0.2.1 80 typ nat tcptype passive\n",
		"priority 0":       head + "a=candidate:1 1 tcp 0 192.0.2.1 80 typ host tcptype passive\n",
		"priority > 2^32":  head + "a=candidate:1 1 tcp 4294967296 192.0.2.1 80 typ host tcptype passive\n",
		"odd extensions":   head + "a=candidate:1 1 tcp 1 192.0.2.1 80 typ host tcptype\n",
		"raddr no rport":   head + "a=candidate:1 1 tcp 1 192.0.2.1 80 typ srflx raddr 10.0.0.1 tcptype passive\n",
		"multicast":        head + "a=candidate:1 1 tcp 1 224.0.0.1 80 typ host tcptype passive\n",
		"unspecified":      head + "a=candidate:1 1 tcp 1 0.0.0.0 80 typ host tcptype passive\n",
		"mapped v4":        head + "a=candidate:1 1 tcp 1 ::ffff:192.0.2.1 80 typ host tcptype passive\n",
		"long foundation":  head + "a=candidate:" + strings.Repeat("f", 33) + " 1 tcp 1 192.0.2.1 80 typ host tcptype passive\n",
		"too many":         head + strings.Repeat("a=candidate:1 1 udp 1 192.0.2.1 80 typ host\n", MaxCandidates+1),
		"too large":        head + strings.Repeat("a=x:"+strings.Repeat("y", 100)+"\n", 40),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDescription([]byte(text))
			if !errors.Is(err, ErrBadDescription) {
				t.Fatalf("got %v, want ErrBadDescription", err)
			}
		})
	}
}

func FuzzParseDescription(f *testing.F) {
	text, _ := typical().MarshalText()
	f.Add(text)
	f.Add([]byte("a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\na=candidate:1 1 tcp 1 ::1 80 typ relay raddr ::1 rport 9 tcptype so\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescription(data)
		if err != nil {
			return
		}
		// Whatever parses must encode, and re-parse to the same thing.
		out, err := d.MarshalText()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		d2, err := ParseDescription(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		out2, _ := d2.MarshalText()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
