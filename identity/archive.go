package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Account archive: the account key and contacts, encrypted with a key
// derived from a password, so a second device can join the account.
//
//	magic    "PDAR"       4 bytes
//	version  0x01         1 byte
//	kdf      0x01         1 byte  (Argon2id, RFC 9106)
//	time     uint32 BE            Argon2id passes
//	memory   uint32 BE            Argon2id memory in KiB
//	threads  uint8                Argon2id lanes
//	salt     16 bytes
//	nonce    24 bytes             XChaCha20-Poly1305
//	sealed   the rest             XChaCha20-Poly1305(JSON), additional data = all bytes above
//
// Import bounds every parameter before running the KDF, so a hostile
// archive cannot make the importer allocate more than MaxArchiveMemoryKiB.
const (
	archiveMagic   = "PDAR"
	archiveVersion = 1
	kdfArgon2id    = 1
	archiveHdrSize = 4 + 1 + 1 + 4 + 4 + 1 + 16 + chacha20poly1305.NonceSizeX

	// MinPasswordLength is the shortest export password accepted, in bytes.
	MinPasswordLength = 8
	// MaxArchiveSize bounds an archive before it is decoded.
	MaxArchiveSize = 1 << 20
	// MaxArchiveMemoryKiB bounds the Argon2id memory an archive may ask for.
	MaxArchiveMemoryKiB = 1 << 20 // 1 GiB
	maxArchiveTime      = 16
)

// KDFParams are the Argon2id parameters used to export an archive.
type KDFParams struct {
	Time      uint32 // passes; 0 means 3
	MemoryKiB uint32 // 0 means 64 MiB
	Threads   uint8  // 0 means 4
}

func (p *KDFParams) withDefaults() KDFParams {
	var q KDFParams
	if p != nil {
		q = *p
	}
	if q.Time == 0 {
		q.Time = 3
	}
	if q.MemoryKiB == 0 {
		q.MemoryKiB = 64 << 10
	}
	if q.Threads == 0 {
		q.Threads = 4
	}
	return q
}

type archiveJSON struct {
	Version    int       `json:"version"`
	AccountKey []byte    `json:"account_key"`
	Created    time.Time `json:"created"`
	Contacts   []Contact `json:"contacts,omitempty"`
}

// ExportAccount seals acct and contacts under password (nil params means
// the defaults: Argon2id t=3, m=64 MiB, p=4).
func ExportAccount(acct *Account, contacts []Contact, password []byte, params *KDFParams) ([]byte, error) {
	if len(password) < MinPasswordLength {
		return nil, fmt.Errorf("%w: want at least %d characters", ErrWeakPassword, MinPasswordLength)
	}
	p := params.withDefaults()
	if p.MemoryKiB > MaxArchiveMemoryKiB || p.Time > maxArchiveTime {
		return nil, fmt.Errorf("identity: export: KDF parameters above import limits")
	}
	plain, err := json.Marshal(archiveJSON{Version: archiveVersion, AccountKey: acct.key.Seed(), Created: acct.Created, Contacts: contacts})
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, 0, archiveHdrSize)
	hdr = append(hdr, archiveMagic...)
	hdr = append(hdr, archiveVersion, kdfArgon2id)
	hdr = binary.BigEndian.AppendUint32(hdr, p.Time)
	hdr = binary.BigEndian.AppendUint32(hdr, p.MemoryKiB)
	hdr = append(hdr, p.Threads)
	salt := make([]byte, 16+chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	hdr = append(hdr, salt...)
	key := argon2.IDKey(password, hdr[archiveHdrSize-16-chacha20poly1305.NonceSizeX:archiveHdrSize-chacha20poly1305.NonceSizeX], p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	nonce := hdr[archiveHdrSize-chacha20poly1305.NonceSizeX:]
	return aead.Seal(hdr, nonce, plain, hdr), nil
}

// ImportAccount opens an archive made by ExportAccount.
func ImportAccount(archive, password []byte) (*Account, []Contact, error) {
	if len(archive) > MaxArchiveSize {
		return nil, nil, fmt.Errorf("identity: archive: %w: %d bytes", ErrCorrupt, len(archive))
	}
	if len(archive) < archiveHdrSize+chacha20poly1305.Overhead || !bytes.HasPrefix(archive, []byte(archiveMagic)) {
		return nil, nil, fmt.Errorf("identity: archive: %w: not a peerdrop account archive", ErrCorrupt)
	}
	if v := archive[4]; v != archiveVersion {
		return nil, nil, fmt.Errorf("identity: archive: %w: version %d not supported", ErrCorrupt, v)
	}
	if archive[5] != kdfArgon2id {
		return nil, nil, fmt.Errorf("identity: archive: %w: unknown KDF %d", ErrCorrupt, archive[5])
	}
	t := binary.BigEndian.Uint32(archive[6:])
	m := binary.BigEndian.Uint32(archive[10:])
	threads := archive[14]
	if t == 0 || t > maxArchiveTime || m < 8*uint32(max(threads, 1)) || m > MaxArchiveMemoryKiB || threads == 0 {
		return nil, nil, fmt.Errorf("identity: archive: %w: KDF parameters out of bounds (t=%d m=%dKiB p=%d)", ErrCorrupt, t, m, threads)
	}
	salt := archive[15:31]
	nonce := archive[31:archiveHdrSize]
	key := argon2.IDKey(password, salt, t, m, threads, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, nil, err
	}
	plain, err := aead.Open(nil, nonce, archive[archiveHdrSize:], archive[:archiveHdrSize])
	if err != nil {
		return nil, nil, ErrBadPassword
	}
	var aj archiveJSON
	if err := json.Unmarshal(plain, &aj); err != nil {
		return nil, nil, fmt.Errorf("identity: archive: %w: %v", ErrCorrupt, err)
	}
	if aj.Version != archiveVersion || len(aj.AccountKey) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("identity: archive: %w: bad contents", ErrCorrupt)
	}
	return accountFromKey(ed25519.NewKeyFromSeed(aj.AccountKey), aj.Created), aj.Contacts, nil
}

// Export seals this store's account and contacts under password.
func (s *Store) Export(password []byte, params *KDFParams) ([]byte, error) {
	acct, _, err := s.Load()
	if err != nil {
		return nil, err
	}
	cs, err := s.Contacts()
	if err != nil {
		return nil, err
	}
	return ExportAccount(acct, cs, password, params)
}

// Join imports an account archive into an empty store and creates a new
// device of that account named deviceName, with keys of its own and a
// certificate signed by the imported account key. Contacts in the archive
// are merged into the store.
func (s *Store) Join(archive, password []byte, deviceName string) (*Account, *Device, error) {
	acct, contacts, err := ImportAccount(archive, password)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Initialized() {
		return nil, nil, ErrExists
	}
	acct, dev, err := s.createDevice(acct, deviceName)
	if err != nil {
		return nil, nil, err
	}
	if len(contacts) > 0 {
		if err := s.saveContacts(contacts); err != nil {
			return nil, nil, err
		}
	}
	return acct, dev, nil
}
