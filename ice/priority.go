package ice

// RFC 6544 section 4.2: the local preference of a TCP candidate is
// 2^13 * direction-pref + other-pref. Hosts prefer active, then passive;
// reflexive candidates (behind a NAT) prefer simultaneous-open, then passive.
func directionPref(t CandidateType, tcp TCPType) uint32 {
	switch {
	case tcp == Active:
		return 6
	case tcp == SimultaneousOpen:
		return 5
	case tcp == Passive && (t == Host || t == Relay):
		return 4
	case tcp == Passive:
		return 2
	}
	return 2
}

// candidatePriority is RFC 8445 section 5.1.2.1 for component 1:
// 2^24 * type-pref + 2^8 * local-pref + (256 - 1). other is the preference
// among addresses of the same kind (0 to 8191; IPv6 above IPv4 here).
func candidatePriority(t CandidateType, tcp TCPType, other uint32) uint32 {
	local := directionPref(t, tcp)<<13 | other&0x1fff
	return t.preference()<<24 | local<<8 | 255
}

// otherPref ranks addresses of one candidate kind: IPv6 first, then IPv4,
// then by position in the interface list.
func otherPref(ipv6 bool, index int) uint32 {
	base := 4095
	if ipv6 {
		base = 8191
	}
	p := base - index
	if p < 0 {
		p = 0
	}
	return uint32(p)
}

// pairPriority is RFC 8445 section 6.1.2.3: G is the controlling side's
// candidate priority, D the controlled side's.
func pairPriority(g, d uint32) uint64 {
	lo, hi := uint64(min(g, d)), uint64(max(g, d))
	p := lo<<32 + 2*hi
	if g > d {
		p++
	}
	return p
}
