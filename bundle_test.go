package peerdrop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/manifest"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// tree makes photos/ (nested, an empty folder, an executable) and
// report.pdf under dir and returns their paths and contents by relative
// path.
func tree(t *testing.T, dir string) ([]string, map[string][]byte) {
	t.Helper()
	want := map[string][]byte{}
	for _, f := range []struct {
		rel  string
		size int64
	}{{"photos/a.jpg", 300 << 10}, {"photos/2026/b.jpg", 1 << 20}, {"photos/2026/c.jpg", 0}, {"photos/run.sh", 100}, {"report.pdf", 5000}} {
		p := filepath.Join(dir, filepath.FromSlash(f.rel))
		os.MkdirAll(filepath.Dir(p), 0o700)
		_, data := file(t, filepath.Dir(p), filepath.Base(p), f.size)
		want[f.rel] = data
	}
	os.Chmod(filepath.Join(dir, "photos", "run.sh"), 0o700)
	os.MkdirAll(filepath.Join(dir, "photos", "empty"), 0o700)
	os.Symlink("/etc/passwd", filepath.Join(dir, "photos", "passwd"))
	return []string{filepath.Join(dir, "photos"), filepath.Join(dir, "report.pdf")}, want
}

// TestSendFolder: a folder and a file in one offer, to two devices: one
// decision each, every file verified in a new folder, the executable bit
// and the empty folder kept, the symbolic link left out.
func TestSendFolder(t *testing.T) {
	t.Parallel()
	_, alice, bobs := aliceAndBob(t, 2, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	paths, want := tree(t, t.TempDir())
	// bob-1 has a photos folder already: the new one must not merge.
	os.MkdirAll(filepath.Join(bobs[0].Node.cfg.DownloadDir, "photos"), 0o700)
	out, err := alice.SendFiles(ctx, bobs[0].Account(), paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bobs {
		in := nextOffer(t, b, 10*time.Second)
		o := in.Offer()
		if o.Files != 5 || o.Size != 300<<10+1<<20+100+5000 || strings.Join(o.Tops, ",") != "photos/,report.pdf" || o.Name != "photos/ and 1 more" {
			t.Fatalf("%s: offer %+v", b.DeviceName(), o)
		}
		if err := in.Accept(transfer.Destination{}); err != nil {
			t.Fatal(err)
		}
		go func() { in.Wait(ctx) }()
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, b := range bobs {
		waitFor(t, 10*time.Second, func() bool { h := b.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
		h := b.History()[0]
		top := "photos"
		if i == 0 {
			top = "photos (1)"
		}
		if h.Files != 5 || h.Path != filepath.Join(b.Node.cfg.DownloadDir, top) {
			t.Fatalf("%s: record %+v", b.DeviceName(), h)
		}
		for rel, data := range want {
			p := filepath.Join(b.Node.cfg.DownloadDir, filepath.FromSlash(rel))
			if strings.HasPrefix(rel, "photos/") {
				p = filepath.Join(b.Node.cfg.DownloadDir, top, filepath.FromSlash(strings.TrimPrefix(rel, "photos/")))
			}
			sameFile(t, p, data)
		}
		if fi, err := os.Stat(filepath.Join(b.Node.cfg.DownloadDir, top, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: run.sh not executable: %v", b.DeviceName(), fi.Mode())
		}
		if fi, err := os.Stat(filepath.Join(b.Node.cfg.DownloadDir, top, "empty")); err != nil || !fi.IsDir() {
			t.Errorf("%s: no empty folder: %v", b.DeviceName(), err)
		}
		if _, err := os.Lstat(filepath.Join(b.Node.cfg.DownloadDir, top, "passwd")); !os.IsNotExist(err) {
			t.Errorf("%s: the symbolic link came: %v", b.DeviceName(), err)
		}
	}
	files := map[string]int{}
	for _, e := range alice.ev.list() {
		if e.Kind == EventFile && e.State == multidevice.Finished {
			files[e.DeviceName+e.Device.Short()]++
		}
	}
	if len(files) != 2 {
		t.Fatalf("file events per device: %v", files)
	}
	for d, n := range files {
		if n != 5 {
			t.Fatalf("%s: %d file events", d, n)
		}
	}
}

// TestHostileManifest: a sender whose manifest climbs out of the folder
// gets nothing written, and the receiver records why.
func TestHostileManifest(t *testing.T) {
	t.Parallel()
	_, alice, bobs := aliceAndBob(t, 1, func(c *Config) { c.DeliveryWindow = -1 }, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, _ := file(t, t.TempDir(), "evil", 10)
	for _, bad := range []string{"../escaped", "x/../../escaped", "/tmp/escaped", "a//b"} {
		fi, _ := os.Stat(src)
		m := &manifest.Manifest{Entries: []manifest.Entry{{Path: bad, Size: 10, ModTime: fi.ModTime()}}}
		id := transfer.NewID()
		b := newOutBundle(m, []string{src}, filepath.Join(alice.home, outboxDir, id.String()+".manifest"))
		if err := b.save(); err != nil {
			t.Fatal(err)
		}
		out, err := alice.send(ctx, id, bob.Account(), b.file, nil, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Wait(ctx); err == nil {
			t.Fatalf("%q: sent", bad)
		}
		waitFor(t, 10*time.Second, func() bool { r, ok := bob.records.get(id, Incoming); return ok && r.State.Terminal() })
		if r, _ := bob.records.get(id, Incoming); r.State != multidevice.Failed || !strings.Contains(r.Error, "unsafe") {
			t.Fatalf("%q: record %+v", bad, r)
		}
	}
	for _, p := range []string{filepath.Join(bob.Node.cfg.DownloadDir, "..", "escaped"), filepath.Join(bob.home, "escaped"), "/tmp/escaped"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s written: %v", p, err)
		}
	}
}

// fileReceived matches the event of a file of many received.
func fileReceived(e Event) bool {
	return e.Kind == EventFile && e.Direction == Incoming && e.State == multidevice.Finished
}

// filesReceived counts the files of many the nodes received.
func filesReceived(nodes ...*testNode) int {
	got := 0
	for _, n := range nodes {
		for _, e := range n.ev.list() {
			if fileReceived(e) {
				got++
			}
		}
	}
	return got
}

// bobStopsMidFolder is alice and one device of bob's that accepts
// everything and closes its node as the first file of many arrives;
// closed is closed then.
func bobStopsMidFolder(t *testing.T) (tn *testNet, alice, bob *testNode, closed <-chan struct{}) {
	stops, arm := closesAt(fileReceived, 200*time.Millisecond)
	tn, alice, bobs := aliceAndBob(t, 1, retrySoon, func(c *Config) {
		c.AutoAccept = AcceptUpTo(1 << 40)
		stops(c)
	})
	return tn, alice, bobs[0], arm(bobs[0])
}

// TestFolderResumes: the receiving device stops in the middle of a
// folder; once it runs again the sender tries it again by itself, the
// files it has are not sent again, and the folder completes in the same
// place.
func TestFolderResumes(t *testing.T) {
	t.Parallel()
	tn, alice, bob, closed := bobStopsMidFolder(t)
	first := bob
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "album"), 0o700)
	want := map[string][]byte{}
	for i := range 12 {
		p, data := file(t, filepath.Join(dir, "album"), fmt.Sprintf("%02d.jpg", i), 8<<20)
		want[filepath.Base(p)] = data
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := alice.SendFiles(ctx, bob.Account(), []string{filepath.Join(dir, "album")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("no file arrived: %+v", out.Devices())
	}
	for end := time.Now().Add(20 * time.Second); deviceStates(out)["bob-1"].State != multidevice.Waiting; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not waiting after the receiver stopped: %+v", deviceStates(out)["bob-1"])
		}
	}
	bob = tn.open(t, bob.home, bob.cfg.modFrom())
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { h := bob.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	h := bob.History()[0]
	if h.Path != filepath.Join(bob.Node.cfg.DownloadDir, "album") {
		t.Fatalf("record %+v", h)
	}
	for name, data := range want {
		sameFile(t, filepath.Join(h.Path, name), data)
	}
	if _, err := os.Stat(filepath.Join(bob.Node.cfg.DownloadDir, "album (1)")); !os.IsNotExist(err) {
		t.Fatal("the resumed folder went elsewhere")
	}
	// Each file was received once: those the first run had were not
	// sent again.
	if got := filesReceived(first, bob); got != 12 {
		t.Fatalf("%d files received, want 12", got)
	}
}

// TestFolderReask: the receiver stops in the middle of a folder that the
// sender does not try again (no delivery window); started again, it asks
// for the rest (Reask, "peerdrop resume"): the sender offers the folder
// again on a link with streams, and only the files missing come, small
// ones in packs too, into the same folder.
func TestFolderReask(t *testing.T) {
	t.Parallel()
	tn, alice, bob, closed := bobStopsMidFolder(t)
	first := bob
	dir := t.TempDir()
	album := filepath.Join(dir, "album")
	os.MkdirAll(filepath.Join(album, "small"), 0o700)
	want := map[string][]byte{}
	for i := range 6 {
		_, want[fmt.Sprintf("%02d.jpg", i)] = file(t, album, fmt.Sprintf("%02d.jpg", i), 8<<20)
	}
	for i := range 40 {
		_, want[fmt.Sprintf("small/%02d.txt", i)] = file(t, filepath.Join(album, "small"), fmt.Sprintf("%02d.txt", i), 3000)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := alice.SendFiles(ctx, bob.Account(), []string{album}, WithDeliveryWindow(-1))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("no file arrived: %+v", out.Devices())
	}
	if err := out.Wait(ctx); err == nil {
		t.Fatal("the folder arrived whole at a device that stopped")
	}
	bob = tn.open(t, bob.home, bob.cfg.modFrom())
	converge(t, []*testNode{bob}, []*testNode{alice})
	in, err := bob.Reask(ctx, out.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	h := bob.History()[0]
	if h.State != multidevice.Finished || h.Path != filepath.Join(bob.Node.cfg.DownloadDir, "album") {
		t.Fatalf("record %+v", h)
	}
	for rel, data := range want {
		sameFile(t, filepath.Join(h.Path, filepath.FromSlash(rel)), data)
	}
	if got := filesReceived(first, bob); got != len(want) {
		t.Fatalf("%d files received, want %d (each once)", got, len(want))
	}
	waitFor(t, 10*time.Second, func() bool { return alice.History()[0].State == multidevice.Finished })
}

// TestPackSink: a pack's bytes, in chunks of any size, are cut into its
// files (empty ones included, those received before read past), which
// appear only at Commit, with their mode and time; Abort leaves nothing.
func TestPackSink(t *testing.T) {
	dir := t.TempDir()
	mod := time.Unix(1_600_000_000, 0)
	sizes := []int64{5, 0, 1000, 0, 3, 70_000, 1, 0}
	b := &inBundle{id: transfer.NewID(), m: &manifest.Manifest{}, got: make([]bool, len(sizes))}
	var pack []byte
	want := map[int][]byte{}
	for i, size := range sizes {
		b.m.Entries = append(b.m.Entries, manifest.Entry{Path: fmt.Sprint("f", i), Size: size, Exec: i == 2, ModTime: mod})
		b.paths = append(b.paths, filepath.Join(dir, fmt.Sprint("f", i)))
		data := make([]byte, size)
		rand.Read(data)
		pack, want[i] = append(pack, data...), data
	}
	// Entry 4 was received by an earlier attempt: it is read past.
	os.WriteFile(b.paths[4], want[4], 0o600)
	skip := []bool{false, false, false, false, true, false, false, false}
	for _, chunk := range []int{1, 7, 4096, len(pack)} {
		for i := range sizes {
			if i != 4 {
				os.Remove(b.paths[i])
			}
		}
		p := &packSink{b: b, first: 0, last: len(sizes) - 1, skip: skip, next: 0}
		for rest := pack; len(rest) > 0; {
			k := min(chunk, len(rest))
			if n, err := p.Write(rest[:k]); err != nil || n != k {
				t.Fatalf("chunk %d: write %d, %v", chunk, n, err)
			}
			rest = rest[k:]
		}
		if _, err := os.Stat(b.paths[0]); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("chunk %d: a file appeared before Commit", chunk)
		}
		if _, err := p.Commit(); err != nil {
			t.Fatal(err)
		}
		for i := range sizes {
			sameFile(t, b.paths[i], want[i])
			fi, _ := os.Stat(b.paths[i])
			if i != 4 && (!fi.ModTime().Equal(mod) || (fi.Mode().Perm()&0o100 != 0) != (i == 2)) {
				t.Errorf("chunk %d: f%d: %v %v", chunk, i, fi.Mode(), fi.ModTime())
			}
		}
		if names := hidden(t, dir); len(names) != 0 {
			t.Fatalf("chunk %d: left behind: %v", chunk, names)
		}
	}
	// Aborted halfway; and one byte too many.
	p := &packSink{b: b, first: 0, last: len(sizes) - 1, skip: make([]bool, len(sizes)), next: 0}
	p.Write(pack[:1500])
	p.Abort()
	if names := hidden(t, dir); len(names) != 0 {
		t.Fatalf("abort left: %v", names)
	}
	p = &packSink{b: b, first: 0, last: len(sizes) - 1, skip: make([]bool, len(sizes)), next: 0}
	if _, err := p.Write(append(pack[:len(pack):len(pack)], 0)); err == nil {
		t.Fatal("a byte past the pack's files was taken")
	}
	p.Abort()
	p = &packSink{b: b, first: 0, last: len(sizes) - 1, skip: make([]bool, len(sizes)), next: 0}
	p.Write(pack[:100])
	if _, err := p.Commit(); err == nil {
		t.Fatal("a short pack was committed")
	}
	p.Abort()
}

// hidden lists the hidden files in dir.
func hidden(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
