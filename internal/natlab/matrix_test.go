package natlab

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair is one cell of the matrix: Alice (behind A) sends to Bob (behind
// B, or the same router), with or without TURN configured on both.
type pair struct {
	A, B NAT
	Same bool
	TURN bool
	UPnP bool // B's router maps ports (miniupnpd) and Bob runs with --portmap
	// Proxy gives both hosts the lab's signaling proxy (--proxy); with
	// TURN, a UDP-blocked host reaches TURN over TLS on port 443.
	Proxy bool
	// Delay is added to every frame, each way, on both access links.
	Delay time.Duration
}

func (p pair) String() string {
	s := fmt.Sprintf("%s→%s", p.A, p.B)
	if p.Same {
		s = fmt.Sprintf("%s, same router", p.A)
	}
	if p.UPnP {
		s += "+upnp"
	}
	if p.Proxy {
		s += "+proxy"
	}
	if p.TURN {
		s += "+turn"
	}
	return s
}

// expect is what peerdrop should do for a pair: whether the file arrives,
// and over which kind of path. Every host knows the lab's STUN server.
// Direct paths are TCP: active to passive when either side accepts inbound
// connections (an open host) or both are on one LAN; between two NATs, TCP
// simultaneous open from the listeners' ports, which works unless both
// NATs filter by port and one of them also maps each destination to a new
// port (port-restricted or symmetric ↔ symmetric), or both reset
// unsolicited SYNs (each reset closes the other side's fresh mapping; on
// the lab's zero-delay links the two never meet): there the path is the
// TURN relay, and without TURN the error must suggest it. Port mapping at
// the receiver's router (UPnP) makes any pair direct ("mapped"). A full cone
// accepts a connection to its mapped listener port from anyone, so the
// other side's dial may win over simultaneous open ("mapped"): either
// counts. The DHT signaling is UDP: a UDP-blocked site cannot reach it,
// so nothing works there and the error must say so, unless the hosts have
// the signaling proxy (TLS over TCP): then a UDP-blocked site is a
// port-restricted NAT for TCP like any other.
func (p pair) expect() (ok bool, links []string) {
	restrictive := func(n NAT) bool { return n == PortRestricted || n == ResetRestricted || n == Symmetric }
	if p.Proxy {
		if p.A == UDPBlocked {
			p.A = PortRestricted
		}
		if p.B == UDPBlocked {
			p.B = PortRestricted
		}
	}
	switch {
	case p.A == UDPBlocked || p.B == UDPBlocked:
		return false, nil
	case p.Same || p.A == Open || p.B == Open:
		return true, []string{"direct"}
	case p.UPnP:
		// Alice reaches the mapped port either from an ordinary port
		// ("mapped") or from her listener's ("simultaneous-open"), the
		// same public port when the NAT kept the listener's.
		return true, []string{"mapped", "simultaneous-open"}
	case restrictive(p.A) && p.B == Symmetric, p.A == Symmetric && restrictive(p.B),
		p.A == ResetRestricted && p.B == ResetRestricted:
		if p.TURN {
			return true, []string{"relay"}
		}
		return false, nil
	}
	return true, []string{"simultaneous-open", "mapped"}
}

type outcome struct {
	pair
	OK        bool
	Relayed   bool
	Link      string
	FirstByte time.Duration
	Connect   time.Duration // ICE: from the answer to the selected path
	Rate      float64       // bytes/s
	Exit      int
	Err       string
	Took      time.Duration
}

const matrixFile = 4 << 20

// runPair runs one cell with the real CLI: bob runs recv --yes, alice
// send --json; the result line says the path and the timings.
func runPair(t testing.TB, l *Lab, p pair) outcome {
	sa := l.Site(p.A)
	sb := sa
	if !p.Same {
		sb = l.Site(p.B)
	}
	if p.UPnP {
		sb.UPnP()
	}
	var shape *Shape
	if p.Delay > 0 {
		shape = &Shape{Delay: p.Delay}
	}
	alice, bob := sa.Host("alice", shape), sb.Host("bob", shape)
	if os.Getenv("PEERDROP_NATLAB_DEBUG") != "" { // both hosts log at debug level, shown on failure
		alice.Extra = append(alice.Extra, "--log-level", "debug")
		bob.Extra = append(bob.Extra, "--log-level", "debug")
	}
	if p.UPnP {
		bob.Extra = append(bob.Extra, "--portmap", "--log-level", "debug")
	}
	alice.TURN, bob.TURN = p.TURN, p.TURN
	alice.Proxy, bob.Proxy = p.Proxy, p.Proxy
	alice.TURNTLS, bob.TURNTLS = p.Proxy && sa.NAT == UDPBlocked, p.Proxy && sb.NAT == UDPBlocked
	Befriend(alice, bob, alice.Init(), bob.Init())
	inbox := t.TempDir()
	rx := bob.Start("", "recv", "--yes", "--dir", inbox)
	if _, err := rx.TryNext(60*time.Second, "ready", nil); err != "" {
		t.Fatalf("bob's recv: %s; stderr:\n%s", err, rx.Stderr)
	}
	src := filepath.Join(t.TempDir(), "file.bin")
	data := make([]byte, matrixFile)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tx := alice.Start("", "send", "bob", src)
	o := outcome{pair: p}
	o.Exit = tx.Wait(3 * time.Minute)
	o.Took = time.Since(start)
	for _, ev := range tx.Rest() {
		switch ev["event"] {
		case "result":
			o.OK, _ = ev["ok"].(bool)
			o.Relayed, _ = ev["relayed"].(bool)
			o.Link, _ = ev["link"].(string)
			if ms, ok := ev["first_byte_ms"].(float64); ok {
				o.FirstByte = time.Duration(ms * float64(time.Millisecond))
			}
			o.Rate, _ = ev["rate"].(float64)
			if devs, _ := ev["devices"].([]any); len(devs) > 0 {
				if ms, ok := devs[0].(map[string]any)["connect_ms"].(float64); ok {
					o.Connect = time.Duration(ms * float64(time.Millisecond))
				}
			}
		case "error": // the command's own words, with its hint
			o.Err, _ = ev["error"].(string)
			if h, _ := ev["hint"].(string); h != "" {
				o.Err += " (hint: " + h + ")"
			}
		}
	}
	if o.OK {
		got, err := os.ReadFile(filepath.Join(inbox, "file.bin"))
		if err != nil || string(got) != string(data) {
			t.Errorf("%v: reported ok, but the received file differs (%v)", p, err)
			o.OK = false
		}
	}
	if ok, _ := p.expect(); ok && !o.OK {
		t.Logf("%v: alice's log:\n%s\nbob's log:\n%s", p, tx.Stderr, rx.Stderr)
	}
	return o
}

// matrix is every pair of NAT types (each unordered pair once) with
// nothing but STUN, and with everything (TURN and the signaling proxy);
// the pairs with a UDP-blocked site also with the proxy alone; every type
// with both hosts behind the same router; and port mapping.
func matrix() []pair {
	var ps []pair
	for i, a := range NATs {
		for _, b := range NATs[i:] {
			ps = append(ps, pair{A: a, B: b}, pair{A: a, B: b, TURN: true, Proxy: true})
			if a == UDPBlocked || b == UDPBlocked {
				ps = append(ps, pair{A: a, B: b, Proxy: true})
			}
		}
	}
	for _, a := range NATs[1:] {
		ps = append(ps, pair{A: a, B: a, Same: true})
	}
	// Port mapping at the receiver's router, for every NAT type it can
	// help (behind a full cone the mapped path exists anyway).
	for _, a := range []NAT{FullCone, PortRestricted, Symmetric} {
		for _, b := range []NAT{PortRestricted, Symmetric} {
			ps = append(ps, pair{A: a, B: b, UPnP: true})
		}
	}
	return ps
}

// ciMatrix is the subset .ci/run runs: one cell of each kind of outcome.
func ciMatrix() []pair {
	return []pair{
		{A: PortRestricted, B: Open},                           // direct, inbound to the open host
		{A: PortRestricted, B: PortRestricted},                 // simultaneous open
		{A: FullCone, B: Symmetric},                            // simultaneous open (or the cone's mapping)
		{A: Symmetric, B: PortRestricted, TURN: true},          // relayed
		{A: Symmetric, B: Symmetric},                           // no path, no TURN: a clean error
		{A: Symmetric, B: Symmetric, UPnP: true},               // the receiver's router maps its port
		{A: PortRestricted, B: ResetRestricted},                // simultaneous open despite resets
		{A: Symmetric, B: Symmetric, Same: true},               // one LAN: direct
		{A: UDPBlocked, B: Open, TURN: true},                   // no DHT: a clean error
		{A: UDPBlocked, B: PortRestricted, Proxy: true},        // signaling over TLS; simultaneous open
		{A: Symmetric, B: UDPBlocked, TURN: true, Proxy: true}, // signaling over TLS; TURN over TLS
	}
}

// TestMatrix sends a file across each pair of NAT types with the real CLI
// and checks the outcome against expect. PEERDROP_NATLAB=full runs every
// cell (59); otherwise a representative eleven. PEERDROP_NATLAB_TABLE=FILE
// writes the results as a markdown table.
func TestMatrix(t *testing.T) {
	needLab(t)
	cells := ciMatrix()
	if os.Getenv("PEERDROP_NATLAB") == "full" {
		cells = matrix()
	}
	l := New(t, bin, 1)
	var mu sync.Mutex
	var results []outcome
	sem := make(chan struct{}, 4) // more at once overload 2 cores: answers come seconds late
	t.Run("cells", func(t *testing.T) {
		for _, p := range cells {
			t.Run(p.String(), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				o := runPair(t, l, p)
				mu.Lock()
				results = append(results, o)
				mu.Unlock()
				wantOK, wantLinks := p.expect()
				t.Logf("%v: ok %v link %s first byte %v rate %.1f MB/s exit %d in %v %s", p, o.OK, o.Link, o.FirstByte.Round(time.Millisecond), o.Rate/1e6, o.Exit, o.Took.Round(time.Millisecond), o.Err)
				switch {
				case o.OK != wantOK:
					t.Errorf("%v: ok %v, want %v (exit %d: %s)", p, o.OK, wantOK, o.Exit, o.Err)
				case wantOK && !slices.Contains(wantLinks, o.Link):
					t.Errorf("%v: link %q, want one of %q", p, o.Link, wantLinks)
				case wantOK && o.Relayed != (o.Link == "relay"):
					t.Errorf("%v: relayed %v for link %q", p, o.Relayed, o.Link)
				case wantOK && o.Exit != 0:
					t.Errorf("%v: exit %d after success", p, o.Exit)
				case !wantOK && (o.Exit != 5 || o.Err == ""):
					t.Errorf("%v: failure with exit %d and error %q; want exit 5 and a clear error", p, o.Exit, o.Err)
				case !wantOK && (p.A == UDPBlocked && !p.Proxy) != strings.Contains(o.Err, "reached no DHT node"):
					t.Errorf("%v: error %q does not say whether this device reached the DHT", p, o.Err)
				case !wantOK && (p.Proxy || p.A != UDPBlocked && p.B != UDPBlocked) && !strings.Contains(o.Err, "--turn"):
					t.Errorf("%v: error %q does not suggest TURN", p, o.Err)
				case !wantOK && o.Took > 2*time.Minute:
					t.Errorf("%v: failing took %v: a hang, not an error", p, o.Took)
				}
			})
		}
	})
	if path := os.Getenv("PEERDROP_NATLAB_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table(results)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("table written to %s", path)
	}
}

var linkNames = map[string]string{
	"direct":            "direct TCP",
	"simultaneous-open": "direct TCP, simultaneous open",
	"mapped":            "direct TCP to the NAT's mapped port",
	"relay":             "TURN relay (TCP)",
}

// table renders the results as markdown.
func table(rs []outcome) string {
	sort.Slice(rs, func(i, j int) bool { return rs[i].pair.String() < rs[j].pair.String() })
	var b strings.Builder
	b.WriteString("| sender | receiver | TURN | proxy | result | path | first byte | throughput | time |\n")
	b.WriteString("|--------|----------|------|-------|--------|------|-----------|-----------|------|\n")
	for _, r := range rs {
		recv := string(r.B)
		if r.Same {
			recv += " (same router)"
		}
		turn, prox := "no", "no"
		if r.TURN {
			turn = "yes"
			if r.Proxy && (r.A == UDPBlocked || r.B == UDPBlocked) {
				turn = "yes (TLS for the UDP-blocked side)"
			}
		}
		if r.Proxy {
			prox = "yes"
		}
		if r.UPnP {
			recv += ", UPnP"
		}
		res, path, fb, rate := "ok", linkNames[r.Link], r.FirstByte.Round(time.Millisecond).String(), fmt.Sprintf("%.0f MB/s", r.Rate/1e6)
		if !r.OK {
			res, path, fb, rate = fmt.Sprintf("fails, exit %d", r.Exit), "—", "—", "—"
			switch {
			case strings.Contains(r.Err, "reached no DHT node"):
				path = "no signaling: the sender reaches no DHT node"
			case strings.Contains(r.Err, "found in the DHT"):
				path = "no signaling: the receiver reaches no DHT node"
			default:
				path = "no path without TURN"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.1fs |\n", r.A, recv, turn, prox, res, path, fb, rate, r.Took.Seconds())
	}
	return b.String()
}
