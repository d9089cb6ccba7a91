package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// An ID is the printable form of an Ed25519 public key: the key itself (so
// the ID is self-certifying: whoever holds it can check signatures without
// asking anybody) followed by a 3-byte checksum that also covers the ID's
// kind, so an account ID pasted where a device ID is expected is rejected.
//
// Text form: 56 characters of lowercase RFC 4648 base32 in seven groups of
// eight, separated by '-'. Parsing ignores case, spaces, dashes and line
// breaks, and reads the digits 0, 1 and 8 (absent from the alphabet) as the
// letters o, l and b, so an ID survives being read aloud, retyped or
// wrapped by a mail client; any other typo fails the checksum (a random
// error passes with probability 2^-24).
const (
	idKeySize      = ed25519.PublicKeySize
	idChecksumSize = 3
	idRawSize      = idKeySize + idChecksumSize // 35 bytes = 280 bits = 56 base32 chars
	idTextSize     = 56
	idGroupSize    = 8
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

type idKind byte

const (
	kindAccount idKind = 'A'
	kindDevice  idKind = 'D'
)

func (k idKind) String() string {
	if k == kindAccount {
		return "account"
	}
	return "device"
}

func idChecksum(kind idKind, key []byte) []byte {
	h := sha256.New()
	h.Write([]byte("peerdrop id v1"))
	h.Write([]byte{byte(kind)})
	h.Write(key)
	return h.Sum(nil)[:idChecksumSize]
}

func formatID(kind idKind, key [idKeySize]byte) string {
	raw := make([]byte, 0, idRawSize)
	raw = append(raw, key[:]...)
	raw = append(raw, idChecksum(kind, key[:])...)
	s := idEncoding.EncodeToString(raw)
	var b strings.Builder
	for i := 0; i < len(s); i += idGroupSize {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i : i+idGroupSize])
	}
	return b.String()
}

func parseID(kind idKind, s string) ([idKeySize]byte, error) {
	var key [idKeySize]byte
	if len(s) > 4*idTextSize {
		return key, fmt.Errorf("%w: %s ID too long", ErrInvalidID, kind)
	}
	clean := make([]byte, 0, idTextSize)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '0':
			c = 'o'
		case c == '1':
			c = 'l'
		case c == '8':
			c = 'b'
		}
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return key, fmt.Errorf("%w: %s ID has invalid character %q", ErrInvalidID, kind, s[i])
		}
		clean = append(clean, c)
	}
	if len(clean) != idTextSize {
		return key, fmt.Errorf("%w: %s ID has %d characters, want %d", ErrInvalidID, kind, len(clean), idTextSize)
	}
	raw, err := idEncoding.DecodeString(string(clean))
	if err != nil || len(raw) != idRawSize {
		return key, fmt.Errorf("%w: %s ID is not valid base32", ErrInvalidID, kind)
	}
	if !bytes.Equal(raw[idKeySize:], idChecksum(kind, raw[:idKeySize])) {
		other := kindDevice
		if kind == kindDevice {
			other = kindAccount
		}
		if bytes.Equal(raw[idKeySize:], idChecksum(other, raw[:idKeySize])) {
			return key, fmt.Errorf("%w: this is a %s ID, not a %s ID", ErrInvalidID, other, kind)
		}
		return key, fmt.Errorf("%w: %s ID checksum does not match (typo?)", ErrInvalidID, kind)
	}
	copy(key[:], raw)
	return key, nil
}

// AccountID identifies an account: it is the account's Ed25519 public key.
// The zero value is "no account".
type AccountID [idKeySize]byte

// DeviceID identifies a device: it is the device's Ed25519 signing public
// key. The zero value is "no device".
type DeviceID [idKeySize]byte

// AccountIDFromKey returns the ID of the account whose public key is pub.
func AccountIDFromKey(pub ed25519.PublicKey) (AccountID, error) {
	var id AccountID
	if len(pub) != ed25519.PublicKeySize {
		return id, fmt.Errorf("%w: account key has %d bytes", ErrInvalidID, len(pub))
	}
	copy(id[:], pub)
	return id, nil
}

// DeviceIDFromKey returns the ID of the device whose signing key is pub.
func DeviceIDFromKey(pub ed25519.PublicKey) (DeviceID, error) {
	var id DeviceID
	if len(pub) != ed25519.PublicKeySize {
		return id, fmt.Errorf("%w: device key has %d bytes", ErrInvalidID, len(pub))
	}
	copy(id[:], pub)
	return id, nil
}

// ParseAccountID parses the text form of an account ID (see String).
func ParseAccountID(s string) (AccountID, error) {
	k, err := parseID(kindAccount, s)
	return AccountID(k), err
}

// ParseDeviceID parses the text form of a device ID (see String).
func ParseDeviceID(s string) (DeviceID, error) {
	k, err := parseID(kindDevice, s)
	return DeviceID(k), err
}

// String returns the printable ID: seven dash-separated groups of eight
// base32 characters with a checksum.
func (id AccountID) String() string { return formatID(kindAccount, id) }

// String returns the printable ID: seven dash-separated groups of eight
// base32 characters with a checksum.
func (id DeviceID) String() string { return formatID(kindDevice, id) }

// Short returns the first group of the printable ID, for logs and prompts.
func (id AccountID) Short() string { return id.String()[:idGroupSize] }

// Short returns the first group of the printable ID, for logs and prompts.
func (id DeviceID) Short() string { return id.String()[:idGroupSize] }

// PublicKey returns the account's Ed25519 public key.
func (id AccountID) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), id[:]...) }

// PublicKey returns the device's Ed25519 signing public key.
func (id DeviceID) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), id[:]...) }

// IsZero reports whether id is the zero ID.
func (id AccountID) IsZero() bool { return id == AccountID{} }

// IsZero reports whether id is the zero ID.
func (id DeviceID) IsZero() bool { return id == DeviceID{} }

// MarshalText implements encoding.TextMarshaler.
func (id AccountID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *AccountID) UnmarshalText(b []byte) error {
	v, err := ParseAccountID(string(b))
	if err == nil {
		*id = v
	}
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (id DeviceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *DeviceID) UnmarshalText(b []byte) error {
	v, err := ParseDeviceID(string(b))
	if err == nil {
		*id = v
	}
	return err
}
