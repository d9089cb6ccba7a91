// Package identity holds who is who in peerdrop: accounts, their devices,
// and the contacts an account trusts.
//
// An account is an Ed25519 key; its AccountID is the public key itself in a
// printable, checksummed form, so an ID is enough to verify anything the
// account signed (self-certifying, no directory needed). Each device has
// its own Ed25519 signing key (its DeviceID, and the key of its TLS
// certificate) and an X25519 sealing key (signaling messages are encrypted
// to it). The account signs an X.509 certificate for each device that binds
// both device keys to the account; see cert.go for its exact shape.
// VerifyDeviceCert and VerifyDeviceCertFor check a certificate against an
// expected account (and device) and fail with a *CertError whose Kind says
// which check failed.
//
// Every device of an account holds the account key: a second device joins
// by importing a password-encrypted archive (Argon2id + XChaCha20-Poly1305,
// see archive.go) exported by the first, then creates keys of its own and
// signs its own certificate.
//
// A Store is a directory holding the account key, this device's keys and
// the contacts list, each file 0600 and written atomically; it refuses
// files other users can read and reports missing or damaged files with
// ErrNotInitialized and ErrCorrupt.
package identity
