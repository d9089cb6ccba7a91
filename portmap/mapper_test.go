package portmap

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePMP is a NAT-PMP server (RFC 6886) on 127.0.0.1:5351 whose public
// address is 203.0.113.5; it maps TCP port p to p+10000 unless asked for
// another, and records every request.
type fakePMP struct {
	pc     *net.UDPConn
	wg     sync.WaitGroup
	mu     sync.Mutex
	maps   map[uint16]uint32 // internal port → lifetime of the last request
	log    []string
	refuse bool // answer mapping requests with result 3 (no external address)
}

var fakePublic = netip.MustParseAddr("203.0.113.5")

func startFakePMP(t *testing.T) *fakePMP {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5351})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:5351 for a fake NAT-PMP router: %v", err)
	}
	f := &fakePMP{pc: pc, maps: make(map[uint16]uint32)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n < 2 || buf[0] != 0 {
				continue
			}
			switch op := buf[1]; {
			case op == 0 && n == 2:
				res := []byte{0, 128, 0, 0, 0, 0, 0, 1}
				res = append(res, fakePublic.AsSlice()...)
				_, _ = pc.WriteToUDP(res, from)
			case op == 2 && n == 12:
				internal := binary.BigEndian.Uint16(buf[4:6])
				f.mu.Lock()
				refuse := f.refuse
				if refuse {
					f.log = append(f.log, "refused")
				}
				f.mu.Unlock()
				if refuse {
					res := make([]byte, 16)
					res[1], res[3] = 130, 3
					_, _ = pc.WriteToUDP(res, from)
					continue
				}
				want := binary.BigEndian.Uint16(buf[6:8])
				life := binary.BigEndian.Uint32(buf[8:12])
				f.mu.Lock()
				if life == 0 {
					delete(f.maps, internal)
					f.log = append(f.log, "del")
				} else {
					f.maps[internal] = life
					f.log = append(f.log, "add")
				}
				f.mu.Unlock()
				ext := want
				if ext == 0 {
					ext = internal + 10000
				}
				if life == 0 {
					ext = 0
				}
				res := make([]byte, 16)
				res[1] = 130
				binary.BigEndian.PutUint32(res[4:8], 1)
				binary.BigEndian.PutUint16(res[8:10], internal)
				binary.BigEndian.PutUint16(res[10:12], ext)
				binary.BigEndian.PutUint32(res[12:16], life)
				_, _ = pc.WriteToUDP(res, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); f.wg.Wait() })
	return f
}

func (f *fakePMP) count(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.log {
		if l == what {
			n++
		}
	}
	return n
}

func (f *fakePMP) mapped(port uint16) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.maps[port]
	return ok
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNATPMP: a port asked for while the router is being discovered is
// mapped as soon as it is found; MapPort then answers from the mapping,
// which is renewed at half its lease and deleted on Close.
func TestNATPMP(t *testing.T) {
	f := startFakePMP(t)
	m := New(&Config{Gateway: netip.MustParseAddr("127.0.0.1"), NoUPnP: true, Lease: 2 * time.Second})
	defer m.Close()
	local := netip.MustParseAddrPort("10.0.0.2:4000")
	ctx := context.Background()
	_, err := m.MapPort(ctx, local)
	if err != nil && !errors.Is(err, ErrDiscovering) {
		t.Fatalf("MapPort during discovery: %v, want ErrDiscovering or a mapping", err)
	}
	waitFor(t, "the port asked for during discovery to be mapped", func() bool { return f.mapped(4000) })
	if proto, _ := m.Status(); proto != "nat-pmp" {
		t.Fatalf("Status %q", proto)
	}
	start := time.Now()
	ext, err := m.MapPort(ctx, local)
	if err != nil || ext != netip.AddrPortFrom(fakePublic, 14000) {
		t.Fatalf("MapPort: %v, %v; want %v:14000", ext, err, fakePublic)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("a mapped port took %v", d)
	}
	if _, err := m.MapPort(ctx, netip.MustParseAddrPort("[2001:db8::1]:4000")); !errors.Is(err, ErrFamily) {
		t.Fatalf("IPv6: %v", err)
	}
	waitFor(t, "a renewal at half the lease", func() bool { return f.count("add") >= 2 })
	m.Close()
	if f.mapped(4000) {
		t.Fatal("the mapping outlived Close")
	}
	if _, err := m.MapPort(ctx, local); !errors.Is(err, ErrClosed) {
		t.Fatalf("MapPort after Close: %v", err)
	}
}

// TestRediscover: a network change deletes the mappings and maps the same
// ports again once the router is found again.
func TestRediscover(t *testing.T) {
	f := startFakePMP(t)
	m := New(&Config{Gateway: netip.MustParseAddr("127.0.0.1"), NoUPnP: true})
	defer m.Close()
	local := netip.MustParseAddrPort("10.0.0.2:4001")
	waitFor(t, "discovery", func() bool { p, _ := m.Status(); return p != "" })
	if _, err := m.MapPort(context.Background(), local); err != nil {
		t.Fatal(err)
	}
	m.Rediscover()
	waitFor(t, "the mapping deleted and made again", func() bool { return f.count("del") >= 1 && f.count("add") >= 2 && f.mapped(4001) })
}

// TestNoRouter: nothing answers NAT-PMP (and UPnP is off): discovery ends
// with ErrNoRouter, and MapPort says so at once.
func TestNoRouter(t *testing.T) {
	m := New(&Config{Gateway: netip.MustParseAddr("127.0.0.1"), NoUPnP: true, Timeout: 300 * time.Millisecond})
	defer m.Close()
	waitFor(t, "discovery to give up", func() bool { _, err := m.Status(); return err != nil })
	start := time.Now()
	if _, err := m.MapPort(context.Background(), netip.MustParseAddrPort("10.0.0.2:4002")); !errors.Is(err, ErrNoRouter) {
		t.Fatalf("MapPort: %v, want ErrNoRouter", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("MapPort without a router took %v", d)
	}
}

// TestRefusedQuiet: after the router refused a mapping, MapPort answers
// with that error at once, without asking again, for a while.
func TestRefusedQuiet(t *testing.T) {
	f := startFakePMP(t)
	f.mu.Lock()
	f.refuse = true
	f.mu.Unlock()
	m := New(&Config{Gateway: netip.MustParseAddr("127.0.0.1"), NoUPnP: true})
	defer m.Close()
	waitFor(t, "discovery", func() bool { p, _ := m.Status(); return p != "" })
	local := netip.MustParseAddrPort("10.0.0.2:4003")
	_, err1 := m.MapPort(context.Background(), local)
	waitFor(t, "the refusal", func() bool { return f.count("refused") >= 1 })
	asked := f.count("refused")
	start := time.Now()
	_, err2 := m.MapPort(context.Background(), local)
	if err1 == nil && err2 == nil {
		t.Fatal("a refused mapping reported success")
	}
	if err2 == nil || time.Since(start) > 50*time.Millisecond || f.count("refused") != asked {
		t.Fatalf("second MapPort: %v after %v, %d requests (want the last error at once, no request)", err2, time.Since(start), f.count("refused")-asked)
	}
}
