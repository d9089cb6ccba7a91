//go:build !unix

package dht

// setReuse does nothing here: one node per host listens on the group port.
func setReuse(uintptr) error { return nil }
