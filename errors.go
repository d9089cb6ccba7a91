package peerdrop

import (
	"errors"

	"github.com/peerdrop/peerdrop/identity"
)

// Errors of the Node.
var (
	// ErrNotInitialized: the home has no identity; run Init first.
	ErrNotInitialized = identity.ErrNotInitialized
	// ErrClosed: the Node was closed.
	ErrClosed = errors.New("peerdrop: node closed")
	// ErrUnknownTransfer: no such transfer in the history.
	ErrUnknownTransfer = errors.New("peerdrop: unknown transfer")
	// ErrHomeInUse: another Node (of this or another process) runs on the
	// home directory; one home is one device, run by one Node at a time.
	ErrHomeInUse = errors.New("peerdrop: home directory in use by another running node")
	// ErrNoAnswer: a device did not answer a request in time (it is
	// offline, or cannot reach the DHT).
	ErrNoAnswer = errors.New("no answer (device offline?)")
	// ErrCanceledBySender is the reason a transfer canceled by Cancel
	// carries.
	ErrCanceledBySender = errors.New("canceled by the sender")
)
