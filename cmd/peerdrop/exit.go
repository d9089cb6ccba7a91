package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
)

// Exit statuses (documented in the package comment and the README).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitRefused     = 3
	exitCanceled    = 4
	exitFailed      = 5
	exitUnknown     = 6
	exitNotInit     = 7
	exitQueued      = 8
	exitInterrupted = 130
)

// cliError is an error with its exit status and a hint: what to do about it.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...), hint: "see peerdrop --help"}
}

func withHint(code int, err error, hint string) error {
	return &cliError{code: code, err: err, hint: hint}
}

// errInterrupted: the user pressed Ctrl-C (or the process got SIGTERM).
var errInterrupted = errors.New("interrupted")

// classify turns an error of the library into an exit status and a hint.
func classify(err error, home string) (int, string) {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code, ce.hint
	}
	var de *multidevice.DevicesError
	switch {
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted, "running transfers were canceled; partial files are kept (peerdrop resume ID)"
	case errors.Is(err, peerdrop.ErrNotInitialized):
		return exitNotInit, fmt.Sprintf("run: peerdrop init --home %s", home)
	case errors.Is(err, peerdrop.ErrHomeInUse):
		return exitError, "another peerdrop (recv?) runs on this home: stop it, or use another --home"
	case errors.Is(err, identity.ErrNoContact):
		return exitUnknown, "see peerdrop contact list; add one with: peerdrop contact add CONTACT-STRING"
	case errors.Is(err, peerdrop.ErrUnknownTransfer):
		return exitUnknown, "see peerdrop transfers"
	case errors.Is(err, multidevice.ErrNoDevices):
		return exitFailed, "the contact has not published any device: run peerdrop recv on one of their devices, with a DHT node you both reach (--bootstrap, --lan)"
	case errors.As(err, &de):
		switch de.State {
		case multidevice.Refused:
			return exitRefused, ""
		case multidevice.Canceled:
			return exitCanceled, ""
		}
		return exitFailed, devicesHint(de)
	}
	return exitError, ""
}

// devicesHint says what to try when no device received a file.
func devicesHint(de *multidevice.DevicesError) string {
	var noAnswer, noPath, triedSO bool
	for _, d := range de.Devices {
		switch {
		case errors.Is(d.Err, peerdrop.ErrNoAnswer):
			noAnswer = true
		case errors.Is(d.Err, ice.ErrNoPath):
			noPath = true
			var ce *ice.ConnectError
			triedSO = triedSO || errors.As(d.Err, &ce) && ce.TriedSimultaneousOpen()
		}
	}
	var hints []string
	if noAnswer {
		hints = append(hints, "is peerdrop recv running on those devices, with a DHT node you both reach (--bootstrap, --lan)?")
	}
	switch {
	case noPath && triedSO:
		hints = append(hints, "no direct path between your two NATs (simultaneous open failed: one of them is symmetric, or both reset unsolicited connections): configure a TURN server with --turn (and --turn-user, --turn-pass), or have a router forward the port (--portmap)")
	case noPath:
		hints = append(hints, "no network path between you: configure a TURN server with --turn (and --turn-user, --turn-pass); between two NATs, a STUN server (--stun) on both sides may give a direct path")
	}
	return strings.Join(hints, "; ")
}
