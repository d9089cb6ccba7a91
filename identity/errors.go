package identity

import (
	"errors"
	"fmt"
	"io/fs"
)

var (
	// ErrInvalidID means a printable account or device ID did not parse:
	// wrong length, a character outside the alphabet, a checksum mismatch
	// (usually a typo), or an ID of the other kind.
	ErrInvalidID = errors.New("identity: invalid ID")

	// ErrNotInitialized means the key store has no account or device yet.
	// It wraps fs.ErrNotExist.
	ErrNotInitialized = fmt.Errorf("identity: key store not initialized: %w", fs.ErrNotExist)

	// ErrExists means Init or Join was called on a key store that already
	// holds an identity; nothing was overwritten.
	ErrExists = errors.New("identity: key store already holds an identity")

	// ErrCorrupt means a key store file or archive could not be decoded,
	// or its contents are inconsistent (for example a device certificate
	// that does not match the device key).
	ErrCorrupt = errors.New("identity: corrupt data")

	// ErrBadPassword means an account archive could not be decrypted: the
	// password is wrong or the archive was modified.
	ErrBadPassword = errors.New("identity: wrong password or tampered archive")

	// ErrWeakPassword means an export password is shorter than
	// MinPasswordLength.
	ErrWeakPassword = errors.New("identity: password too short")
)

// PermissionError reports a key store file or directory that other users
// can read or write. The store refuses to use it until the mode is fixed.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("identity: %s has mode %#o, readable or writable by others; run: chmod go-rwx %s", e.Path, e.Mode.Perm(), e.Path)
}

// CertErrorKind says why a device certificate was rejected.
type CertErrorKind int

const (
	// CertMalformed: not a parseable peerdrop device certificate.
	CertMalformed CertErrorKind = iota + 1
	// CertSelfSigned: signed by the device's own key, not by an account.
	CertSelfSigned
	// CertBadChain: the signature does not verify under the account the
	// certificate names as its issuer.
	CertBadChain
	// CertWrongAccount: a valid certificate, but of another account than
	// the expected one.
	CertWrongAccount
	// CertWrongDevice: a valid certificate of the expected account, but of
	// another device than the expected one.
	CertWrongDevice
	// CertExpired: the current time is after the certificate's NotAfter.
	CertExpired
	// CertNotYetValid: the current time is before the certificate's NotBefore.
	CertNotYetValid
	// CertKeyMismatch: the certificate is valid but the peer proved
	// possession of another key (TLS) or the stored key does not match.
	CertKeyMismatch
)

var certKindNames = map[CertErrorKind]string{
	CertMalformed:    "malformed certificate",
	CertSelfSigned:   "self-signed certificate",
	CertBadChain:     "certificate not signed by its account",
	CertWrongAccount: "certificate of another account",
	CertWrongDevice:  "certificate of another device",
	CertExpired:      "certificate expired",
	CertNotYetValid:  "certificate not yet valid",
	CertKeyMismatch:  "certificate does not match key",
}

func (k CertErrorKind) String() string {
	if s, ok := certKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("CertErrorKind(%d)", int(k))
}

// CertError is returned when a device certificate fails verification.
// Callers branch on Kind.
type CertError struct {
	Kind   CertErrorKind
	Detail string // human-readable detail, may be empty
}

func (e *CertError) Error() string {
	if e.Detail == "" {
		return "identity: " + e.Kind.String()
	}
	return "identity: " + e.Kind.String() + ": " + e.Detail
}

// Is lets errors.Is(err, &CertError{Kind: k}) match on the kind alone.
func (e *CertError) Is(target error) bool {
	t, ok := target.(*CertError)
	return ok && t.Kind == e.Kind && t.Detail == ""
}
