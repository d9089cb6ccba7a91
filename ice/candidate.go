package ice

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// CandidateType is the kind of a candidate (RFC 8445 section 5.1.1).
type CandidateType uint8

// Candidate types, in the order RFC 8445 prefers them.
const (
	Host            CandidateType = iota + 1 // an address of a local interface
	PeerReflexive                            // learned from an incoming check
	ServerReflexive                          // an address a NAT or port mapping gives this host
	Relay                                    // a TURN relayed address
)

// String returns the SDP token: host, prflx, srflx or relay.
func (t CandidateType) String() string {
	switch t {
	case Host:
		return "host"
	case PeerReflexive:
		return "prflx"
	case ServerReflexive:
		return "srflx"
	case Relay:
		return "relay"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// preference is the type preference of RFC 8445 section 5.1.2.2.
func (t CandidateType) preference() uint32 {
	switch t {
	case Host:
		return 126
	case PeerReflexive:
		return 110
	case ServerReflexive:
		return 100
	}
	return 0
}

// TCPType is the connection direction of a TCP candidate (RFC 6544 section 4.5).
type TCPType uint8

// TCP candidate directions.
const (
	Active           TCPType = iota + 1 // opens connections; advertised with port 9
	Passive                             // accepts connections
	SimultaneousOpen                    // both: dialed from the listener's port towards the peer's "so" candidates
)

// String returns the SDP token: active, passive or so.
func (t TCPType) String() string {
	switch t {
	case Active:
		return "active"
	case Passive:
		return "passive"
	case SimultaneousOpen:
		return "so"
	}
	return "tcptype(" + strconv.Itoa(int(t)) + ")"
}

// discardPort is the port RFC 6544 section 4.5 puts in active candidates.
const discardPort = 9

// Candidate is one TCP transport address of a session, in the terms of
// RFC 8445 and RFC 6544. Only component 1 and transport TCP exist here.
type Candidate struct {
	Foundation string         // 1 to 32 ice-chars; equal for candidates of the same base and server
	Priority   uint32         // RFC 8445 section 5.1.2 with the RFC 6544 local preference
	Addr       netip.AddrPort // port 9 for active candidates
	Type       CandidateType
	TCPType    TCPType
	Related    netip.AddrPort // raddr/rport: the base of a reflexive candidate, the mapped address of a relay; may be zero
}

// String returns the candidate in SDP attribute-value syntax, without the
// "a=candidate:" prefix, e.g.
// "1 1 tcp 2128609279 192.0.2.7 50000 typ host tcptype passive".
func (c Candidate) String() string {
	return string(c.appendText(nil))
}

func (c Candidate) appendText(b []byte) []byte {
	b = append(b, c.Foundation...)
	b = append(b, " 1 tcp "...)
	b = strconv.AppendUint(b, uint64(c.Priority), 10)
	b = append(b, ' ')
	b = c.Addr.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(c.Addr.Port()), 10)
	b = append(b, " typ "...)
	b = append(b, c.Type.String()...)
	if c.Related.IsValid() {
		b = append(b, " raddr "...)
		b = c.Related.Addr().AppendTo(b)
		b = append(b, " rport "...)
		b = strconv.AppendUint(b, uint64(c.Related.Port()), 10)
	}
	b = append(b, " tcptype "...)
	b = append(b, c.TCPType.String()...)
	return b
}

// validate checks what a well-formed candidate of ours or a peer's must be.
func (c Candidate) validate() error {
	if !isICEString(c.Foundation, 1, 32) {
		return fmt.Errorf("foundation %q: want 1 to 32 of [A-Za-z0-9+/]", c.Foundation)
	}
	a := c.Addr.Addr()
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
		return fmt.Errorf("address %s: not a usable unicast IP", c.Addr)
	}
	switch c.Type {
	case Host, PeerReflexive, ServerReflexive, Relay:
	default:
		return fmt.Errorf("unknown candidate type %d", c.Type)
	}
	switch c.TCPType {
	case Active:
	case Passive, SimultaneousOpen:
		if c.Addr.Port() == 0 {
			return fmt.Errorf("%s candidate %s: port 0", c.TCPType, c.Addr)
		}
	default:
		return fmt.Errorf("unknown tcptype %d", c.TCPType)
	}
	if c.Related.IsValid() && (c.Related.Addr().Zone() != "" || c.Related.Addr().Is4In6()) {
		return fmt.Errorf("related address %s: not a plain IP", c.Related)
	}
	return nil
}

// parseCandidate parses the SDP candidate attribute value (RFC 8839 section
// 5.1, RFC 6544 section 4.5). ok is false, with no error, for a well-formed
// candidate that this package does not use (UDP, another component): a peer
// may offer more than we understand.
func parseCandidate(s string) (c Candidate, ok bool, err error) {
	f := strings.Fields(s)
	if len(f) < 8 {
		return c, false, fmt.Errorf("candidate %q: want at least 8 fields", s)
	}
	if len(f)%2 != 0 {
		return c, false, fmt.Errorf("candidate %q: extension attributes come in name/value pairs", s)
	}
	c.Foundation = f[0]
	comp, err := strconv.ParseUint(f[1], 10, 8)
	if err != nil || comp == 0 {
		return c, false, fmt.Errorf("candidate %q: bad component %q", s, f[1])
	}
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil || prio == 0 {
		return c, false, fmt.Errorf("candidate %q: bad priority %q", s, f[3])
	}
	c.Priority = uint32(prio)
	addr, err := netip.ParseAddr(f[4])
	if err != nil {
		return c, false, fmt.Errorf("candidate %q: address must be an IP literal: %w", s, err)
	}
	port, err := strconv.ParseUint(f[5], 10, 16)
	if err != nil {
		return c, false, fmt.Errorf("candidate %q: bad port %q", s, f[5])
	}
	c.Addr = netip.AddrPortFrom(addr, uint16(port))
	if f[6] != "typ" {
		return c, false, fmt.Errorf("candidate %q: want \"typ\" as the 7th field", s)
	}
	switch f[7] {
	case "host":
		c.Type = Host
	case "prflx":
		c.Type = PeerReflexive
	case "srflx":
		c.Type = ServerReflexive
	case "relay":
		c.Type = Relay
	default:
		return c, false, fmt.Errorf("candidate %q: unknown type %q", s, f[7])
	}
	var raddr netip.Addr
	rport := -1
	for i := 8; i < len(f); i += 2 {
		switch name, val := f[i], f[i+1]; name {
		case "raddr":
			if raddr, err = netip.ParseAddr(val); err != nil {
				return c, false, fmt.Errorf("candidate %q: bad raddr: %w", s, err)
			}
		case "rport":
			p, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return c, false, fmt.Errorf("candidate %q: bad rport %q", s, val)
			}
			rport = int(p)
		case "tcptype":
			switch val {
			case "active":
				c.TCPType = Active
			case "passive":
				c.TCPType = Passive
			case "so":
				c.TCPType = SimultaneousOpen
			default:
				return c, false, fmt.Errorf("candidate %q: unknown tcptype %q", s, val)
			}
		}
	}
	if raddr.IsValid() != (rport >= 0) {
		return c, false, fmt.Errorf("candidate %q: raddr and rport go together", s)
	}
	if raddr.IsValid() {
		c.Related = netip.AddrPortFrom(raddr, uint16(rport))
	}
	if !strings.EqualFold(f[2], "tcp") || comp != 1 {
		return c, false, nil
	}
	if c.TCPType == 0 {
		return c, false, fmt.Errorf("candidate %q: TCP candidate without tcptype", s)
	}
	if err := c.validate(); err != nil {
		return c, false, fmt.Errorf("candidate %q: %w", s, err)
	}
	return c, true, nil
}

// isICEString reports whether s is min to max ice-chars (RFC 8839:
// ALPHA / DIGIT / "+" / "/").
func isICEString(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
