package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/testfile"
)

// TestThousandSends: 1,000 files sent to one idle receiver through one
// dht-node, by 1,000 send processes (every file its own offer, signaling
// exchange, ICE and TLS link: several files given to one send are one
// offer), all received and verified; the dht-node stores a constant
// number of items and drops no query. Before the fixed mailbox slots
// every answer was a new item and sends stalled after ~500 at the node's
// per-source quota. Under the race detector (3-4 times slower) and with
// -short it sends 200; .ci/run runs the 1,000 without it.
func TestThousandSends(t *testing.T) {
	procs, per := 1000, 1
	if raceEnabled || testing.Short() {
		procs = 200
	}
	l := newLab(t)
	alice := l.person("alice", "desk")
	bob := l.person("bob", "laptop")
	l.friends("alice", alice, "bob", bob)
	inbox := t.TempDir()
	rx := l.recv(l.home("bob"), "", "--yes", "--dir", inbox)

	src := t.TempDir()
	want := map[string][]byte{}
	start := time.Now()
	for p := 0; p < procs; p++ {
		args := []string{"send", "bob"}
		for i := 0; i < per; i++ {
			name := fmt.Sprintf("f%04d.bin", p*per+i)
			path, data := testfile.Random(t, src, name, 1024)
			want[name] = data
			args = append(args, path)
		}
		l.pd(l.home("alice"), args...)
	}
	elapsed := time.Since(start)
	for name, data := range want {
		testfile.Same(t, filepath.Join(inbox, name), data)
	}
	entries, err := os.ReadDir(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries in the download folder, want %d", len(entries), len(want))
	}
	st := l.node.Next(10*time.Second, "stats", nil)
	t.Logf("%d sends in %v (%.1f/s); dht-node: %v items, %v nodes (%v good), %v queries dropped, %v packets sent",
		len(want), elapsed.Round(time.Millisecond), float64(len(want))/elapsed.Seconds(), st["items"], st["nodes"], st["good_nodes"], st["queries_dropped"], st["packets_sent"])
	// Bob's and Alice's device lists and at most eight mailbox items per
	// ordered device pair.
	if items := st["items"].(float64); items > 2+2*8 {
		t.Errorf("the dht-node stores %v items after %d sends, want at most %d", items, len(want), 2+2*8)
	}
	if d := st["queries_dropped"].(float64); d != 0 {
		t.Errorf("the dht-node dropped %v queries", d)
	}
	// The send processes were read-only DHT nodes (short-lived): none of
	// them is a good node in the dht-node's table (Bob's recv is), where
	// each would be a dead node, referred to others, once it exited
	// (whole-process sends took 3 s instead of 85 ms).
	if n := st["good_nodes"].(float64); n > 1 {
		t.Errorf("the dht-node's table holds %v good nodes after %d send processes, want only Bob's: the senders joined it", n, procs)
	}
	rx.Kill()
}
