// Package testenv decides whether tests that need special privileges or
// tools can run here. On a plain machine such tests skip with a reason;
// with PEERDROP_REQUIRE_ALL=1 (set by .ci/run) a skip becomes a failure,
// so CI cannot pass by silently skipping the real-network tests.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAllVar is the environment variable that turns skips into failures.
const RequireAllVar = "PEERDROP_REQUIRE_ALL"

// Skip skips t with reason, or fails it when RequireAllVar is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireAllVar) != "" {
		t.Fatalf("cannot run: %s (%s is set, so this is a failure, not a skip)", reason, RequireAllVar)
	}
	t.Skip(reason)
}

// NeedRoot skips (or fails, see Skip) unless running as root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root: "+why)
	}
}

// NeedCommand skips (or fails) unless name is on PATH.
func NeedCommand(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, "needs "+name+" on PATH: "+why)
	}
	return p
}
