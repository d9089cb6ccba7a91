package peerdrop

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/peerdrop/peerdrop/signaling"
	"github.com/peerdrop/peerdrop/transfer"
)

// TestNilConfig: a nil Config is the zero Config: a clear error, not a
// panic.
func TestNilConfig(t *testing.T) {
	if _, err := Open(nil); err == nil || !strings.Contains(err.Error(), "Home is required") {
		t.Fatalf("Open(nil): %v", err)
	}
}

// TestErrorsReexported: the re-exported errors are the layers' own, for
// errors.Is and errors.As.
func TestErrorsReexported(t *testing.T) {
	wrapped := fmt.Errorf("send: %w", signaling.ErrNotFound)
	if !errors.Is(wrapped, ErrNotFound) {
		t.Fatal("ErrNotFound is not signaling.ErrNotFound")
	}
	var ce *CancelError
	if !errors.As(fmt.Errorf("x: %w", &transfer.CancelError{Reason: "r"}), &ce) || ce.Reason != "r" {
		t.Fatal("CancelError is not transfer.CancelError")
	}
}
