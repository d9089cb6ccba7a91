package peerdrop

import (
	"strings"
	"testing"
)

// TestNilConfig: a nil Config is the zero Config: a clear error, not a
// panic.
func TestNilConfig(t *testing.T) {
	if _, err := Open(nil); err == nil || !strings.Contains(err.Error(), "Home is required") {
		t.Fatalf("Open(nil): %v", err)
	}
}
