package peerdrop

import (
	"errors"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
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
	// ErrWaiting: OutgoingTransfer.Wait returned because the Node closed
	// while devices were waiting to be tried again (Config.DeliveryWindow);
	// the next Node on the home goes on trying them.
	ErrWaiting = errors.New("peerdrop: not delivered yet: devices that did not answer are tried again while a node runs")
	// ErrNoOpener: a URI was given to send (SendFile, SendFiles) but
	// Config.Open is not set.
	ErrNoOpener = errors.New("peerdrop: a URI needs Config.Open")
	// ErrCanceledBySender is the reason a transfer canceled by Cancel
	// carries.
	ErrCanceledBySender = errors.New("canceled by the sender")
)

// Errors of the layers below that callers of the Node branch on, so that
// an application needs only this package: errors.Is and errors.As work
// with these as with the originals.
var (
	// ErrNoContact: the account is not a contact (SendFile, Reask).
	ErrNoContact = identity.ErrNoContact
	// ErrNotFound: a contact's device list was not found (SendFile,
	// ContactDevices); a device that just started may publish it soon.
	ErrNotFound = signaling.ErrNotFound
	// ErrNoDevices: the contact's list names no device to send to.
	ErrNoDevices = multidevice.ErrNoDevices
	// ErrDigestMismatch: a received file differed from the sender's and
	// was not saved.
	ErrDigestMismatch = transfer.ErrDigestMismatch
	// ErrTimeout: the peer went silent for Transfer.IdleTimeout.
	ErrTimeout = transfer.ErrTimeout
)

type (
	// CancelError is a transfer canceled by either side, with the reason
	// and whether the peer canceled.
	CancelError = transfer.CancelError
	// RefusedError is an offer the peer's device refused, with its reason.
	RefusedError = transfer.RefusedError
	// DevicesError is a send that no device took: each device's error.
	DevicesError = multidevice.DevicesError
	// ConnectError lists every path and server tried to reach a device,
	// and why each failed.
	ConnectError = ice.ConnectError
)
