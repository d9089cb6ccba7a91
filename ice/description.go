package ice

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// Limits on a peer's description, checked before anything is kept.
const (
	MaxDescriptionSize = 4096 // bytes of text
	MaxCandidates      = 32   // candidate lines, used or not
	maxDescLines       = 48
)

// Description is what a session tells its peer through signaling: its ICE
// credentials and its TCP candidates. The text form is a list of SDP
// attribute lines (RFC 8839), one per line:
//
//	a=ice-ufrag:Hq1vGN3Z
//	a=ice-pwd:2V4gJrLk1yq0pWn7fXbM3sTe
//	a=candidate:1 1 tcp 2128609279 192.0.2.7 50000 typ host tcptype passive
//	a=candidate:2 1 tcp 2124414975 192.0.2.7 9 typ host tcptype active
//	a=candidate:5 1 tcp 8331263 203.0.113.9 61000 typ relay raddr 198.51.100.4 rport 40112 tcptype passive
//
// Relay candidates carry the TURN relayed address; raddr is the address the
// TURN server saw this host connect from.
type Description struct {
	Ufrag      string // 4 to 32 ice-chars
	Pwd        string // 22 to 64 ice-chars
	Candidates []Candidate
}

// MarshalText encodes d in the line format above.
func (d Description) MarshalText() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+80*len(d.Candidates))
	b = append(b, "a=ice-ufrag:"...)
	b = append(b, d.Ufrag...)
	b = append(b, "\na=ice-pwd:"...)
	b = append(b, d.Pwd...)
	b = append(b, '\n')
	for _, c := range d.Candidates {
		b = append(b, "a=candidate:"...)
		b = c.appendText(b)
		b = append(b, '\n')
	}
	return b, nil
}

// UnmarshalText is ParseDescription into d.
func (d *Description) UnmarshalText(text []byte) error {
	v, err := ParseDescription(text)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDescription decodes a peer's description. It bounds the size and the
// number of lines and candidates, accepts only IP literals, skips candidates
// this package cannot use (UDP, components other than 1) and unknown
// attributes, and reports anything malformed as an error wrapping
// ErrBadDescription.
func ParseDescription(text []byte) (Description, error) {
	var d Description
	if len(text) > MaxDescriptionSize {
		return d, fmt.Errorf("%w: %d bytes, limit %d", ErrBadDescription, len(text), MaxDescriptionSize)
	}
	lines := bytes.Split(bytes.TrimRight(text, "\r\n"), []byte{'\n'})
	if len(lines) > maxDescLines {
		return d, fmt.Errorf("%w: %d lines, limit %d", ErrBadDescription, len(lines), maxDescLines)
	}
	ncand := 0
	for i, raw := range lines {
		line := string(bytes.TrimSuffix(raw, []byte{'\r'}))
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "a=") {
			return d, fmt.Errorf("%w: line %d: want a=name:value", ErrBadDescription, i+1)
		}
		switch name[2:] {
		case "ice-ufrag":
			if d.Ufrag != "" {
				return d, fmt.Errorf("%w: line %d: second ice-ufrag", ErrBadDescription, i+1)
			}
			d.Ufrag = value
		case "ice-pwd":
			if d.Pwd != "" {
				return d, fmt.Errorf("%w: line %d: second ice-pwd", ErrBadDescription, i+1)
			}
			d.Pwd = value
		case "candidate":
			if ncand++; ncand > MaxCandidates {
				return d, fmt.Errorf("%w: more than %d candidates", ErrBadDescription, MaxCandidates)
			}
			c, use, err := parseCandidate(value)
			if err != nil {
				return d, fmt.Errorf("%w: line %d: %w", ErrBadDescription, i+1, err)
			}
			if use {
				d.Candidates = append(d.Candidates, c)
			}
		}
	}
	if err := d.validate(); err != nil {
		return Description{}, err
	}
	return d, nil
}

func (d Description) validate() error {
	if !isICEString(d.Ufrag, 4, 32) {
		return fmt.Errorf("%w: ufrag must be 4 to 32 of [A-Za-z0-9+/]", ErrBadDescription)
	}
	if !isICEString(d.Pwd, 22, 64) {
		return fmt.Errorf("%w: password must be 22 to 64 of [A-Za-z0-9+/]", ErrBadDescription)
	}
	if len(d.Candidates) > MaxCandidates {
		return fmt.Errorf("%w: %d candidates, limit %d", ErrBadDescription, len(d.Candidates), MaxCandidates)
	}
	for _, c := range d.Candidates {
		if err := c.validate(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadDescription, c, err)
		}
	}
	return nil
}

// newCredentials returns a random ufrag (48 bits) and password (144 bits),
// in the ice-char alphabet.
func newCredentials() (ufrag, pwd string) {
	var b [6 + 18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	enc := base64.RawStdEncoding
	return enc.EncodeToString(b[:6]), enc.EncodeToString(b[6:])
}
