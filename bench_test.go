package peerdrop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/testnet"
	"github.com/peerdrop/peerdrop/tlslink"
	"github.com/peerdrop/peerdrop/transfer"
)

// benchDir is where benchmark files live: PEERDROP_BENCH_DIR (e.g.
// /dev/shm, to measure the protocol rather than the disk) or a temp dir.
func benchDir(b *testing.B) string {
	if d := os.Getenv("PEERDROP_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "peerdrop-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// BenchmarkFirstByte measures the time from SendFile to the first data
// byte at the receiver, through the whole stack on loopback: a device
// list lookup, a sealed request and answer through an 8-node local DHT,
// ICE, TLS 1.3, the offer and an automatic accept. The first iteration is
// the first contact (nothing cached); it is reported separately.
func BenchmarkFirstByte(b *testing.B) {
	tn := newTestNet(b, 8)
	var mu sync.Mutex
	first := map[transfer.ID]time.Time{}
	alice := tn.node(b, "alice", nil)
	bob := tn.node(b, "bob", func(c *Config) {
		c.AutoAccept = AcceptUpTo(1 << 30)
		c.OnEvent = func(e Event) {
			mu.Lock()
			if _, ok := first[e.Transfer]; !ok && e.Bytes > 0 {
				first[e.Transfer] = time.Now()
			}
			mu.Unlock()
		}
	})
	befriend(b, []*testNode{alice}, []*testNode{bob})
	converge(b, []*testNode{alice}, []*testNode{bob})
	alice.dir.Forget(bob.Account()) // the first send is a first contact
	src, _ := file(b, b.TempDir(), "photo.jpg", 256<<10)
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := alice.SendFile(ctx, bob.Account(), src)
		if err != nil {
			b.Fatal(err)
		}
		if err := out.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		var at time.Time
		for deadline := time.Now().Add(5 * time.Second); at.IsZero(); time.Sleep(time.Millisecond) {
			mu.Lock()
			at = first[out.ID()]
			mu.Unlock()
			if time.Now().After(deadline) {
				b.Fatal("no first-byte event")
			}
		}
		lat = append(lat, at.Sub(start))
	}
	b.StopTimer()
	firstContact := lat[0]
	if len(lat) > 1 {
		lat = lat[1:]
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
	b.ReportMetric(ms(firstContact), "first-contact-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThroughput sends one file (PEERDROP_BENCH_SIZE bytes, default
// 1 GiB) through the whole stack to one device and to three devices, and
// the same file with the transfer layer alone (tlslink on a loopback TCP
// connection) as the baseline, alternating, and reports the ratios.
func BenchmarkThroughput(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("PEERDROP_BENCH_SIZE"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = v
	}
	dir := benchDir(b)
	src, _ := file(b, dir, "big.bin", size)
	tn := newTestNet(b, 4)
	recv := func(c *Config) {
		c.AutoAccept = AcceptUpTo(1 << 40)
		c.DownloadDir = filepath.Join(dir, filepath.Base(c.Home))
		os.MkdirAll(c.DownloadDir, 0o700)
	}
	alice := tn.node(b, "alice", nil)
	bob1 := tn.node(b, "bob1", recv)
	befriend(b, []*testNode{alice}, []*testNode{bob1})
	bob2, bob3 := tn.join(b, bob1, "bob2", recv), tn.join(b, bob1, "bob3", recv)
	carol := tn.node(b, "carol", recv)
	befriend(b, []*testNode{alice}, []*testNode{carol})
	converge(b, []*testNode{alice}, []*testNode{bob1, bob2, bob3})
	converge(b, []*testNode{alice}, []*testNode{carol})
	ctx := context.Background()

	send := func(to *testNode) time.Duration {
		start := time.Now()
		out, err := alice.SendFile(ctx, to.Account(), src)
		if err != nil {
			b.Fatal(err)
		}
		if err := out.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		for _, d := range out.Devices() {
			if d.State.String() != "finished" {
				b.Fatalf("%s: %v", d.Name, d.Err)
			}
		}
		d := time.Since(start)
		clean(b, dir)
		return d
	}
	var base, one, three time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		base += baseline(b, dir, src)
		one += send(carol)
		three += send(bob1)
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(base), "baseline-MB/s")
	b.ReportMetric(mbps(one), "1dev-MB/s")
	b.ReportMetric(mbps(three), "3dev-MB/s")
	b.ReportMetric(base.Seconds()/one.Seconds(), "1dev-ratio")
	b.ReportMetric(base.Seconds()/three.Seconds(), "3dev-ratio")
}

// clean removes received files so the next iteration writes afresh.
func clean(b *testing.B, dir string) {
	ents, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	for _, e := range ents {
		os.Remove(e)
	}
}

// baseline sends src with the transfer layer over tlslink on loopback TCP
// between two fresh identities, into dir, and returns the time taken.
func baseline(b *testing.B, dir, src string) time.Duration {
	mk := func() *identity.Device {
		a, err := identity.NewAccount(nil)
		if err != nil {
			b.Fatal(err)
		}
		d, err := a.NewDevice(nil, time.Now(), 0)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	s, r := mk(), mk()
	out := filepath.Join(dir, "baseline")
	os.MkdirAll(out, 0o700)
	start := time.Now()
	c1, c2 := testnet.TCPPair(b)
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		l, err := tlslink.Server(ctx, c2, &tlslink.Config{Device: r, PeerAccount: s.Account(), PeerDevice: s.ID()})
		if err != nil {
			errc <- err
			return
		}
		rc, err := transfer.Receive(ctx, l, nil)
		if err != nil {
			errc <- err
			return
		}
		_, err = rc.Accept(ctx, transfer.Destination{Dir: out})
		errc <- err
	}()
	l, err := tlslink.Client(ctx, c1, &tlslink.Config{Device: s, PeerAccount: r.Account(), PeerDevice: r.ID()})
	if err != nil {
		b.Fatal(err)
	}
	snd, err := transfer.NewSender(l, transfer.Source{Path: src}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := snd.Run(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(fmt.Errorf("baseline receiver: %w", err))
	}
	d := time.Since(start)
	clean(b, dir)
	return d
}

// BenchmarkLinkReuse compares, in the same run, a node that keeps links
// for reuse (the default, ALPN peerdrop/2) with one that makes a link per
// transfer (LinkIdle negative), sending to the same device: 20 files of
// 64 KiB one after the other (reuse-speedup: how many times faster), and
// one file of maxStreamed bytes, the largest sent in a stream
// (stream-ratio: throughput in a stream of a kept link over a link of its
// own).
func BenchmarkLinkReuse(b *testing.B) {
	size := int64(maxStreamed)
	dir := benchDir(b)
	big, _ := file(b, dir, "big.bin", size)
	var small []string
	for i := range 20 {
		p, _ := file(b, dir, fmt.Sprintf("small-%d.bin", i), 64<<10)
		small = append(small, p)
	}
	tn := newMemNet()
	bob := tn.node(b, "bob", func(c *Config) {
		c.AutoAccept = AcceptUpTo(1 << 40)
		c.DownloadDir = filepath.Join(dir, "bob")
		os.MkdirAll(c.DownloadDir, 0o700)
	})
	kept := tn.node(b, "kept", nil)
	single := tn.node(b, "single", func(c *Config) { c.LinkIdle = -1 })
	for _, a := range []*testNode{kept, single} {
		befriend(b, []*testNode{a}, []*testNode{bob})
		converge(b, []*testNode{a}, []*testNode{bob})
	}
	ctx := context.Background()
	send := func(from *testNode, files ...string) time.Duration {
		start := time.Now()
		for _, f := range files {
			out, err := from.SendFile(ctx, bob.Account(), f)
			if err != nil {
				b.Fatal(err)
			}
			if err := out.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		clean(b, dir)
		return d
	}
	send(kept, small[0]) // the kept link exists before the first measure
	var keptSmall, singleSmall, keptBig, singleBig time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		singleSmall += send(single, small...)
		keptSmall += send(kept, small...)
		singleBig += send(single, big)
		keptBig += send(kept, big)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 {
		return float64(d) / float64(b.N) / float64(len(small)) / float64(time.Millisecond)
	}
	b.ReportMetric(per(keptSmall), "kept-ms/file")
	b.ReportMetric(per(singleSmall), "single-ms/file")
	b.ReportMetric(singleSmall.Seconds()/keptSmall.Seconds(), "reuse-speedup")
	b.ReportMetric(float64(size)*float64(b.N)/keptBig.Seconds()/1e6, "stream-MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/singleBig.Seconds()/1e6, "link-MB/s")
	b.ReportMetric(singleBig.Seconds()/keptBig.Seconds(), "stream-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFolder sends many files in one offer (SendFiles) and, in the
// same run, alternating, one file of the same total size (SendFile) over
// the same stack, to one device, and reports the ratio of their times
// (target ≥ 0.7); fs-floor-ratio is the time it takes merely to write the
// same files as a receiver publishes them (create, write, close, set the
// time, rename; one goroutine) against the folder's send. Memory: the peak
// heap in use, and the peak live heap (after a GC) per file, of both
// Nodes during the folder's sends.
func BenchmarkFolder(b *testing.B) {
	for _, c := range []struct {
		name  string
		files int
		size  int64
	}{{"100x100KiB", 100, 100 << 10}, {"10000x1KiB", 10000, 1 << 10}, {"40000x1KiB", 40000, 1 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			dir := benchDir(b)
			folder := filepath.Join(dir, "folder")
			os.MkdirAll(folder, 0o700)
			for i := range c.files {
				file(b, folder, fmt.Sprintf("f%05d.bin", i), c.size)
			}
			one, _ := file(b, dir, "one.bin", int64(c.files)*c.size)
			tn := newMemNet()
			tn.quiet = true // the heap measured is the Nodes'
			bob := tn.node(b, "bob", func(cfg *Config) {
				cfg.AutoAccept = AcceptUpTo(1 << 40)
				cfg.DownloadDir = filepath.Join(dir, "bob")
				os.MkdirAll(cfg.DownloadDir, 0o700)
			})
			alice := tn.node(b, "alice", nil)
			befriend(b, []*testNode{alice}, []*testNode{bob})
			converge(b, []*testNode{alice}, []*testNode{bob})
			ctx := context.Background()
			send := func(paths ...string) time.Duration {
				start := time.Now()
				out, err := alice.SendFiles(ctx, bob.Account(), paths)
				if err != nil {
					b.Fatal(err)
				}
				if err := out.Wait(ctx); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				os.RemoveAll(filepath.Join(dir, "bob"))
				os.MkdirAll(filepath.Join(dir, "bob"), 0o700)
				return d
			}
			send(one) // the link is made before the first measure
			var peak uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			var livePeak uint64
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
						metrics.Read(live)
						livePeak = max(livePeak, live[0].Value.Uint64())
					}
				}
			}()
			var many, single, floor time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				single += send(one)
				many += send(folder)
				floor += writeFiles(b, dir, c.files, c.size)
			}
			b.StopTimer()
			close(stop)
			<-sampled
			b.ReportMetric(float64(c.files)*float64(b.N)/many.Seconds(), "files/s")
			b.ReportMetric(float64(int64(c.files)*c.size)*float64(b.N)/many.Seconds()/1e6, "folder-MB/s")
			b.ReportMetric(float64(int64(c.files)*c.size)*float64(b.N)/single.Seconds()/1e6, "one-file-MB/s")
			b.ReportMetric(single.Seconds()/many.Seconds(), "ratio")
			b.ReportMetric(floor.Seconds()/many.Seconds(), "fs-floor-ratio")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(livePeak)/(1<<20), "peak-live-MiB")
			b.ReportMetric(float64(livePeak)/float64(c.files), "live-B/file")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// writeFiles writes n files of size bytes into a new folder of dir as a
// receiver publishes each file (a hidden name, set the time, rename), and
// returns the time it took.
func writeFiles(b *testing.B, dir string, n int, size int64) time.Duration {
	d, err := os.MkdirTemp(dir, "floor-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(d)
	data := make([]byte, size)
	mod := time.Unix(1_700_000_000, 0)
	start := time.Now()
	for i := range n {
		tmp := filepath.Join(d, fmt.Sprintf(".t%05d", i))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chtimes(tmp, time.Time{}, mod)
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(d, fmt.Sprintf("f%05d.bin", i)))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}
