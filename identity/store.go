package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Key store layout (one directory, mode 0700; every file 0600, written
// atomically):
//
//	account.key    the account signing key (JSON)
//	device.key     this device's keys and certificate (JSON)
//	contacts.json  trusted accounts with names (JSON)
const (
	accountFile  = "account.key"
	deviceFile   = "device.key"
	contactsFile = "contacts.json"
	storeVersion = 1
)

// Store is a key store directory. Its methods are safe for concurrent use
// within one process.
type Store struct {
	dir string
	mu  sync.Mutex
	now func() time.Time
}

// OpenStore opens the key store in dir, creating the directory (mode 0700)
// if needed. A directory that other users can access is made private if it
// holds no keys yet, and refused with a *PermissionError if it does.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("identity: empty key store directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: open key store: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("identity: open key store: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("identity: open key store: %s is not a directory", dir)
	}
	if err := checkPrivateMode(dir, st.Mode()); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, accountFile)); statErr == nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("identity: open key store: %w", err)
		}
	}
	return &Store{dir: dir, now: time.Now}, nil
}

// Dir returns the key store directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// Initialized reports whether the store holds an account.
func (s *Store) Initialized() bool {
	_, err := os.Stat(s.path(accountFile))
	return err == nil
}

type accountJSON struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // Ed25519 seed
}

type deviceJSON struct {
	Version    int       `json:"version"`
	Name       string    `json:"name"`
	Created    time.Time `json:"created"`
	SigningKey []byte    `json:"signing_key"` // Ed25519 seed
	SealingKey []byte    `json:"sealing_key"` // X25519 private key
	Cert       []byte    `json:"cert"`        // DER
}

// Init creates a new account and a first device named deviceName.
// It fails with ErrExists if the store already has an identity.
func (s *Store) Init(deviceName string) (*Account, *Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Initialized() {
		return nil, nil, ErrExists
	}
	acct, err := NewAccount(nil)
	if err != nil {
		return nil, nil, err
	}
	return s.createDevice(acct, deviceName)
}

// createDevice makes a device for acct and saves both. Called with s.mu held.
func (s *Store) createDevice(acct *Account, deviceName string) (*Account, *Device, error) {
	dev, err := acct.NewDevice(nil, s.now(), 0)
	if err != nil {
		return nil, nil, err
	}
	dev.Name = deviceName
	dev.Created = s.now().UTC().Truncate(time.Second)
	if err := s.saveDevice(dev); err != nil {
		return nil, nil, err
	}
	if err := s.saveAccount(acct); err != nil {
		os.Remove(s.path(deviceFile))
		return nil, nil, err
	}
	return acct, dev, nil
}

func (s *Store) saveAccount(a *Account) error {
	data, err := json.MarshalIndent(accountJSON{Version: storeVersion, Created: a.Created, Key: a.key.Seed()}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(accountFile), data)
}

func (s *Store) saveDevice(d *Device) error {
	data, err := json.MarshalIndent(deviceJSON{
		Version:    storeVersion,
		Name:       d.Name,
		Created:    d.Created,
		SigningKey: d.signKey.Seed(),
		SealingKey: d.sealKey.Bytes(),
		Cert:       d.cert.Raw,
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(deviceFile), data)
}

// SaveDevice writes d (for example after Renew) to the store.
func (s *Store) SaveDevice(d *Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveDevice(d)
}

// Load reads the account and this device. A missing store gives an error
// matching ErrNotInitialized (and fs.ErrNotExist); a damaged file gives
// ErrCorrupt; a file others can read gives *PermissionError.
func (s *Store) Load() (*Account, *Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, err := s.loadAccount()
	if err != nil {
		return nil, nil, err
	}
	dev, err := s.loadDevice(acct)
	if err != nil {
		return nil, nil, err
	}
	return acct, dev, nil
}

// readJSON reads the store file name into v and checks its version.
// A missing file gives an error matching ErrNotInitialized.
func (s *Store) readJSON(name string, v any, version *int) error {
	data, err := readPrivateFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (no %s in %s)", ErrNotInitialized, name, s.dir)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("identity: %s: %w: %v", name, ErrCorrupt, err)
	}
	if *version != storeVersion {
		return fmt.Errorf("identity: %s: %w: version %d not supported", name, ErrCorrupt, *version)
	}
	return nil
}

func (s *Store) loadAccount() (*Account, error) {
	var aj accountJSON
	if err := s.readJSON(accountFile, &aj, &aj.Version); err != nil {
		return nil, err
	}
	if len(aj.Key) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: %s: %w: bad key length", accountFile, ErrCorrupt)
	}
	return accountFromKey(ed25519.NewKeyFromSeed(aj.Key), aj.Created), nil
}

func (s *Store) loadDevice(acct *Account) (*Device, error) {
	var dj deviceJSON
	if err := s.readJSON(deviceFile, &dj, &dj.Version); err != nil {
		return nil, err
	}
	if len(dj.SigningKey) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: %s: %w: bad signing key length", deviceFile, ErrCorrupt)
	}
	seal, err := ecdh.X25519().NewPrivateKey(dj.SealingKey)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w: bad sealing key", deviceFile, ErrCorrupt)
	}
	// The stored certificate may have expired; the device is still this
	// device (the caller renews it), so verify at its own NotBefore.
	cert, err := ParseDeviceCert(dj.Cert)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w: %v", deviceFile, ErrCorrupt, err)
	}
	dev, err := newDevice(ed25519.NewKeyFromSeed(dj.SigningKey), seal, dj.Cert, acct.ID(), cert.NotBefore)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w: %v", deviceFile, ErrCorrupt, err)
	}
	dev.Name = dj.Name
	dev.Created = dj.Created
	return dev, nil
}
