package netopt

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	boot, err := Bootstrap(context.Background(), " 127.0.0.1:6882, [::1]:7,,localhost:9 ")
	if err != nil {
		t.Fatal(err)
	}
	if len(boot) < 3 || boot[0] != netip.MustParseAddrPort("127.0.0.1:6882") || boot[1] != netip.MustParseAddrPort("[::1]:7") {
		t.Fatalf("bootstrap %v", boot)
	}
	for _, b := range boot[2:] {
		if !b.Addr().IsLoopback() || b.Port() != 9 {
			t.Fatalf("localhost resolved to %v", b)
		}
	}
	var se *SyntaxError
	for _, bad := range []string{"nohost", "h:0", "h:99999", "1.2.3.4"} {
		if _, err := Bootstrap(context.Background(), bad); !errors.As(err, &se) {
			t.Errorf("bootstrap %q: %v", bad, err)
		}
	}
	if ap, err := Listen(":6881"); err != nil || ap != netip.MustParseAddrPort("0.0.0.0:6881") {
		t.Errorf("listen :6881 → %v %v", ap, err)
	}
	if _, err := Listen("here"); !errors.As(err, &se) {
		t.Errorf("listen here: %v", err)
	}
	srv, err := TURN("turn:a:3478?transport=tcp, turns:b:5349", "u", "p")
	if err != nil || len(srv) != 2 || srv[1].Username != "u" || srv[1].Password != "p" {
		t.Errorf("turn: %v %v", srv, err)
	}
	if _, err := TURN("http://x", "", ""); !errors.As(err, &se) {
		t.Errorf("turn http: %v", err)
	}
	if _, err := TURN("", "u", ""); !errors.As(err, &se) {
		t.Errorf("turn user without URL: %v", err)
	}
	srv, err = Servers("stun:c:3478", "turn:a:3478", "u", "p")
	if err != nil || len(srv) != 2 || srv[0].URL != "turn:a:3478" || srv[1].URL != "stun:c:3478" || srv[1].Username != "" {
		t.Errorf("servers: %v %v", srv, err)
	}
	for _, bad := range [][2]string{{"turn:a", ""}, {"", "stun:a"}} {
		if _, err := Servers(bad[0], bad[1], "", ""); !errors.As(err, &se) {
			t.Errorf("servers %q: %v", bad, err)
		}
	}
}
