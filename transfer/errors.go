package transfer

import (
	"errors"
	"fmt"
)

var (
	// ErrDigestMismatch means the received bytes do not hash to the digest
	// the sender announced in END. The receiver did not publish the file
	// and removed the partial file.
	ErrDigestMismatch = errors.New("transfer: digest mismatch: received file differs from the sender's; it was not saved")

	// ErrTimeout means the peer stopped sending or reading for longer than
	// the configured timeout.
	ErrTimeout = errors.New("transfer: timed out waiting for the peer")

	// ErrSizeMismatch means the sender sent more or fewer bytes than its
	// header announced, or the file changed size while being sent.
	ErrSizeMismatch = errors.New("transfer: size mismatch")

	// ErrLinkFailed wraps a failure of the link itself (reset, closed
	// without CANCEL, unexpected EOF): a later attempt may resume.
	ErrLinkFailed = errors.New("transfer: link failed")

	// ErrClosed means the transfer was already finished or closed.
	ErrClosed = errors.New("transfer: closed")

	// ErrNotAwaiting means Accept or Refuse was called when no decision was
	// pending (already accepted, refused or ended).
	ErrNotAwaiting = errors.New("transfer: offer is not awaiting a decision")
)

// CancelCode says why a transfer was canceled; it travels in CANCEL.
type CancelCode uint8

const (
	CancelByUser   CancelCode = 0 // a person or the application asked
	CancelTimeout  CancelCode = 1 // the peer stalled
	CancelProtocol CancelCode = 2 // the peer broke the protocol
	CancelIO       CancelCode = 3 // a local read or write failed (disk full, file changed)
	CancelShutdown CancelCode = 4 // the application is shutting down
)

func (c CancelCode) String() string {
	switch c {
	case CancelByUser:
		return "canceled"
	case CancelTimeout:
		return "timeout"
	case CancelProtocol:
		return "protocol error"
	case CancelIO:
		return "I/O error"
	case CancelShutdown:
		return "shutdown"
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// CancelError reports a canceled transfer, by this side (Remote false) or
// by the peer (Remote true), with the reason given.
type CancelError struct {
	Code   CancelCode
	Reason string
	Remote bool
}

func (e *CancelError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("transfer: canceled %s (%v)", who, e.Code)
	}
	return fmt.Sprintf("transfer: canceled %s (%v): %s", who, e.Code, e.Reason)
}

// RefusedError reports that the receiver refused the offer.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Reason == "" {
		return "transfer: refused by peer"
	}
	return "transfer: refused by peer: " + e.Reason
}

// ProtocolError reports a peer that broke the wire protocol: a malformed
// or oversized frame, an unknown frame type, a frame out of order.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "transfer: protocol error: " + e.Msg }

func protoErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// VersionError reports a peer speaking another protocol version.
type VersionError struct {
	Got uint8
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("transfer: peer speaks protocol version %d, this side speaks %d", e.Got, Version)
}
