//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ice

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: this OS lets a listener's port also dial out
// (SO_REUSEADDR and SO_REUSEPORT), which simultaneous open needs.
const reusePortSupported = true

// setReuse sets SO_REUSEADDR and SO_REUSEPORT on a socket before bind, so
// that the passive listener and the simultaneous-open dials share a port.
func setReuse(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
