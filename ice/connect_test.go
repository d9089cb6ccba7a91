package ice

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestConnectHost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen netip.AddrPort
	}{
		{"ipv4", loop4},
		{"ipv6", loop6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.listen.Addr().Is6() && !haveIPv6() {
				t.Skip("no IPv6 on this host")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := newTestAgent(t, testConfig(tc.listen))
			b := newTestAgent(t, testConfig(tc.listen))
			sa, sb := connectPair(t, ctx, a, b, true, false, nil)
			if sa.err != nil || sb.err != nil {
				t.Fatalf("connect: A %v; B %v", sa.err, sb.err)
			}
			selA, selB := sa.conn.Selected(), sb.conn.Selected()
			if selA.Relayed || selB.Relayed {
				t.Errorf("relayed path on loopback: %+v / %+v", selA, selB)
			}
			if selA.LocalAddr != selB.RemoteAddr || selA.RemoteAddr != selB.LocalAddr {
				t.Errorf("the two sides selected different connections: A %v→%v, B %v→%v",
					selA.LocalAddr, selA.RemoteAddr, selB.LocalAddr, selB.RemoteAddr)
			}
			if !selA.Controlling || selB.Controlling {
				t.Errorf("roles: A controlling=%v B controlling=%v", selA.Controlling, selB.Controlling)
			}
			if selA.LocalAddr.Addr().Is6() != tc.listen.Addr().Is6() {
				t.Errorf("wrong family: %v", selA.LocalAddr)
			}
			exchange(t, sa.conn, sb.conn, 1<<20)
			exchange(t, sb.conn, sa.conn, 1<<20)
			t.Logf("connected in %v (A) / %v (B): %s", selA.Elapsed, selB.Elapsed, selA.Kind())
		})
	}
}
