package transfer

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"path/filepath"
	"slices"
	"strings"
)

// ID identifies a transfer: one file offered by one sender. Every device
// the file is offered to sees the same ID, and a re-ask names it.
type ID [16]byte

// NewID returns a random transfer ID.
func NewID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the 32-hex-digit form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("transfer: invalid transfer ID %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText writes the ID in hex (for JSON records and events).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads an ID written by MarshalText.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Offer is what the sender announces in HEADER.
type Offer struct {
	ID        ID
	Name      string // as sent by the peer: use SafeName for anything touching a file system
	Size      int64
	MediaType string
	Digest    DigestAlgorithm
	Metadata  map[string]string
}

// SafeName returns the sanitized file name (see SanitizeName).
func (o Offer) SafeName() string { return SanitizeName(o.Name) }

func (o Offer) String() string {
	return fmt.Sprintf("%s (%d bytes, %s) id %s", SanitizeName(o.Name), o.Size, o.MediaType, o.ID)
}

// validate checks an offer before it is sent.
func (o *Offer) validate() error {
	switch {
	case o.Size < 0:
		return fmt.Errorf("transfer: negative size")
	case len(o.Name) > MaxNameLength:
		return fmt.Errorf("transfer: name longer than %d bytes", MaxNameLength)
	case len(o.MediaType) > MaxMediaTypeLength:
		return fmt.Errorf("transfer: media type longer than %d bytes", MaxMediaTypeLength)
	case len(o.Metadata) > MaxMetadataEntries:
		return fmt.Errorf("transfer: more than %d metadata entries", MaxMetadataEntries)
	case !o.Digest.valid():
		return fmt.Errorf("transfer: unknown digest algorithm %d", o.Digest)
	}
	for k, v := range o.Metadata {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			return fmt.Errorf("transfer: metadata %q: key must be 1..%d bytes, value ≤ %d", k, MaxMetadataKey, MaxMetadataValue)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// mediaTypeFor guesses a media type from the file extension.
func mediaTypeFor(name string) string {
	t := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if t == "" || len(t) > MaxMediaTypeLength {
		return "application/octet-stream"
	}
	return t
}
