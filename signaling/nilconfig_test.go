package signaling

import "testing"

// TestNilConfig: nil configs are errors that say what is required, not
// panics.
func TestNilConfig(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil) started a Signaler")
	}
	if _, err := StartKeeper(nil); err == nil {
		t.Fatal("StartKeeper(nil) started a Keeper")
	}
}
