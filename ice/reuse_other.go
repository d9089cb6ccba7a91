//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ice

import (
	"errors"
	"syscall"
)

// reusePortSupported is false where there is no SO_REUSEPORT (Windows):
// a listener's port cannot also dial out, so no simultaneous-open
// candidates are offered, and NATs that filter inbound connections need
// a port mapping or a relay.
const reusePortSupported = false

func setReuse(syscall.RawConn) error { return errors.New("ice: no SO_REUSEPORT on this OS") }
