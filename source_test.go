package peerdrop

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/multidevice"
)

// appFiles is an application's own storage (Config.Open): documents in
// memory named by content URIs, counting opens.
type appFiles struct {
	mu    sync.Mutex
	docs  map[string][]byte
	names map[string]string
	opens atomic.Int32
}

func (a *appFiles) add(uri, name string, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.docs == nil {
		a.docs, a.names = map[string][]byte{}, map[string]string{}
	}
	a.docs[uri], a.names[uri] = data, name
}

func (a *appFiles) open(uri string) (Source, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	data, ok := a.docs[uri]
	if !ok {
		return nil, fs.ErrNotExist
	}
	a.opens.Add(1)
	return appDoc{bytes.NewReader(data), a.names[uri]}, nil
}

type appDoc struct {
	*bytes.Reader
	name string
}

func (d appDoc) Close() error                            { return nil }
func (d appDoc) Stat() (fs.FileInfo, error)              { return d, nil }
func (d appDoc) Name() string                            { return d.name }
func (d appDoc) Mode() fs.FileMode                       { return 0o400 }
func (d appDoc) ModTime() time.Time                      { return time.Unix(1_700_000_000, 0) }
func (d appDoc) IsDir() bool                             { return false }
func (d appDoc) Sys() any                                { return nil }
func (d appDoc) Size() int64                             { return d.Reader.Size() }
func (d appDoc) ReadAt(p []byte, off int64) (int, error) { return d.Reader.ReadAt(p, off) }

func TestIsURI(t *testing.T) {
	for p, want := range map[string]bool{
		"content://media/external/images/1": true, "file:///tmp/x": true, "x-app+v1.2://a": true,
		"/tmp/a://b": false, "C://x": false, "photo.jpg": false, "1ab://x": false, "a b://x": false, "://x": false,
	} {
		if IsURI(p) != want {
			t.Errorf("IsURI(%q) = %v", p, !want)
		}
	}
}

// TestSendFromApp: files the application reads itself (content URIs
// through Config.Open) are sent alone and in a bundle beside a folder,
// and a delivery that waits across the sender's restart opens its URI
// again; without Open a URI is a clear error.
func TestSendFromApp(t *testing.T) {
	t.Parallel()
	app := &appFiles{}
	_, report := file(t, t.TempDir(), "x", 300<<10)
	_, photo := file(t, t.TempDir(), "y", 2<<20)
	app.add("content://docs/7", "report.pdf", report)
	app.add("content://media/42", "IMG_0042.jpg", photo)
	tn, alice, bobs := aliceAndBob(t, 1, func(c *Config) {
		retrySoon(c)
		c.Open = app.open
	}, func(c *Config) { c.AutoAccept = AcceptUpTo(1 << 30) })
	bob := bobs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	out, err := alice.SendFile(ctx, bob.Account(), "content://docs/7")
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { h := bob.History(); return len(h) == 1 && h[0].State == multidevice.Finished })
	sameFile(t, filepath.Join(bob.Node.cfg.DownloadDir, "report.pdf"), report)

	folder := filepath.Join(t.TempDir(), "notes")
	os.Mkdir(folder, 0o700)
	_, note := file(t, folder, "a.txt", 5000)
	out, err = alice.SendFiles(ctx, bob.Account(), []string{folder, "content://media/42"})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { h := bob.History(); return len(h) == 2 && h[0].State == multidevice.Finished })
	sameFile(t, filepath.Join(bob.Node.cfg.DownloadDir, "IMG_0042.jpg"), photo)
	sameFile(t, filepath.Join(bob.Node.cfg.DownloadDir, "notes", "a.txt"), note)

	// The device is offline; the sender stops and starts again: the
	// waiting delivery opens its URI through the new Node's Open.
	bob.Close()
	app.add("content://docs/8", "later.bin", photo[:1<<20])
	out, err = alice.SendFile(ctx, bob.Account(), "content://docs/8")
	if err != nil {
		t.Fatal(err)
	}
	settled(t, out, 30*time.Second)
	alice.Close()
	before := app.opens.Load()
	alice = tn.open(t, alice.home, alice.cfg.modFrom())
	bob = tn.open(t, bob.home, bob.cfg.modFrom())
	waitFor(t, 30*time.Second, func() bool { h := bob.History(); return len(h) == 3 && h[0].State == multidevice.Finished })
	sameFile(t, filepath.Join(bob.Node.cfg.DownloadDir, "later.bin"), photo[:1<<20])
	if app.opens.Load() == before {
		t.Fatal("the resumed delivery did not open its URI again")
	}

	// A node without Open, and a URI the application does not know.
	carol := tn.node(t, "carol", nil)
	befriend(t, []*testNode{carol}, []*testNode{bob})
	if _, err := carol.SendFile(ctx, bob.Account(), "content://docs/7"); !errors.Is(err, ErrNoOpener) {
		t.Fatalf("a URI without Open: %v", err)
	}
	if _, err := alice.SendFile(ctx, bob.Account(), "content://docs/404"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unknown URI: %v", err)
	}
}
