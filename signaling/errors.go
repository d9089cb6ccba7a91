package signaling

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors.
var (
	// ErrNotFound: no item at that DHT location (or it expired).
	ErrNotFound = errors.New("signaling: not found")
	// ErrTooLarge: a message or device list does not fit in one BEP 44 value.
	ErrTooLarge = errors.New("signaling: too large for a DHT value")
	// ErrNotStored: no DHT node accepted a put.
	ErrNotStored = errors.New("signaling: no node stored the item")
	// ErrClosed: the Signaler or DHT node was closed.
	ErrClosed = errors.New("signaling: closed")
	// ErrBadDeviceList: a device list failed verification or parsing.
	ErrBadDeviceList = errors.New("signaling: bad device list")
	// ErrRevoked: the account's device list revokes this device.
	ErrRevoked = errors.New("signaling: this device was revoked from its account")
)

// Reason is why an incoming sealed message was dropped. Every drop is
// counted by reason (see Stats).
type Reason uint8

// Drop reasons.
const (
	ReasonOversized    Reason = iota + 1 // larger than a DHT value can be
	ReasonGarbled                        // not decryptable by us, or malformed inside
	ReasonForged                         // the signature does not verify (unsigned or forged)
	ReasonBadChain                       // the sender's certificate does not chain to its account
	ReasonMisaddressed                   // sealed for another device
	ReasonStale                          // timestamp outside the window
	ReasonReplayed                       // message ID seen before
	ReasonNotContact                     // the sender's account is not allowed by policy
	ReasonWrongSender                    // a valid message from a device other than the mailbox's
	ReasonOverload                       // the application did not take requests fast enough
	numReasons
)

var reasonNames = [...]string{
	ReasonOversized:    "oversized",
	ReasonGarbled:      "garbled",
	ReasonForged:       "forged",
	ReasonBadChain:     "bad certificate chain",
	ReasonMisaddressed: "misaddressed",
	ReasonStale:        "stale",
	ReasonReplayed:     "replayed",
	ReasonNotContact:   "not a contact",
	ReasonWrongSender:  "wrong sender",
	ReasonOverload:     "overload",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// DropError is why a sealed message was rejected.
type DropError struct {
	Reason Reason
	Detail string
}

func (e *DropError) Error() string {
	if e.Detail == "" {
		return "signaling: message dropped: " + e.Reason.String()
	}
	return fmt.Sprintf("signaling: message dropped: %s: %s", e.Reason, e.Detail)
}

func drop(r Reason, format string, args ...any) *DropError {
	return &DropError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
