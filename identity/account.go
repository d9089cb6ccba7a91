package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"time"
)

// Account is an account's signing key. Every device of the account holds
// it (it travels between devices in a password-encrypted archive) and uses
// it to sign device certificates and device lists.
type Account struct {
	key     ed25519.PrivateKey
	id      AccountID
	Created time.Time
}

// NewAccount creates an account with a fresh key from rnd (nil means
// crypto/rand).
func NewAccount(rnd io.Reader) (*Account, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("identity: generate account key: %w", err)
	}
	return accountFromKey(priv, time.Now().UTC().Truncate(time.Second)), nil
}

func accountFromKey(priv ed25519.PrivateKey, created time.Time) *Account {
	id, _ := AccountIDFromKey(priv.Public().(ed25519.PublicKey))
	return &Account{key: priv, id: id, Created: created}
}

// ID returns the account ID (its public key).
func (a *Account) ID() AccountID { return a.id }

// Sign signs msg with the account key.
func (a *Account) Sign(msg []byte) []byte { return ed25519.Sign(a.key, msg) }

// PrivateKey returns the account's signing key.
func (a *Account) PrivateKey() ed25519.PrivateKey { return a.key }

// NewDevice creates keys for a new device of this account and signs its
// certificate, valid from now for validity (0 means DefaultCertValidity).
func (a *Account) NewDevice(rnd io.Reader, now time.Time, validity time.Duration) (*Device, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	_, signKey, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("identity: generate device key: %w", err)
	}
	sealKey, err := ecdh.X25519().GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("identity: generate sealing key: %w", err)
	}
	der, err := a.SignDeviceCert(signKey.Public().(ed25519.PublicKey), sealKey.PublicKey(), now, validity)
	if err != nil {
		return nil, err
	}
	return newDevice(signKey, sealKey, der, a.id, now)
}
