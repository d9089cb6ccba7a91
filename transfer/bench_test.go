package transfer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/tlslink"
)

// The benchmarks send a real file over real TLS 1.3 on loopback TCP and
// save it to a real file:
//
//	BenchmarkTransfer: the full protocol over tlslink (header, GO, framed
//	                   data with BLAKE3, END, verify, fsync, rename, ACK).
//	BenchmarkBaseline: the same file copied over a plain TLS 1.3
//	                   connection, the sender and the receiver each
//	                   computing BLAKE3, the receiver writing and fsyncing
//	                   the file: the least any verified copy has to do.
//	BenchmarkTransferVsBaseline: both, alternately, in one run; reports
//	                   the ratio of their throughputs.
//
// Each reports MB/s and peak-heap-MiB (the largest live heap seen while
// the transfer ran, sampled every 5 ms), for 100 MiB and 1 GiB files.
//
//	go test -run '^$' -bench 'Transfer|Baseline' -benchtime 3x ./transfer
//
// Files live in PEERDROP_BENCH_DIR (default: the temp directory). On a
// disk, the 1 GiB runs mostly measure the disk's fsync; with
// PEERDROP_BENCH_DIR=/dev/shm they measure the CPU cost of the protocol.

var benchSizes = []int64{100 << 20, 1 << 30}

type benchEnv struct {
	src, dstDir string
	size        int64
	alice, bob  *identity.Device
	aliceAcct   identity.AccountID
	bobAcct     identity.AccountID
}

var benchFiles sync.Map // size → path, shared by the benchmarks in one run

func newBenchEnv(b *testing.B, size int64) *benchEnv {
	b.Helper()
	dir := os.Getenv("PEERDROP_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	src := filepath.Join(dir, fmt.Sprintf("peerdrop-bench-%d.bin", size))
	if _, ok := benchFiles.Load(size); !ok {
		if st, err := os.Stat(src); err != nil || st.Size() != size {
			f, err := os.Create(src)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			for w := int64(0); w < size; w += int64(len(buf)) {
				buf[0], buf[1] = byte(w>>20), byte(w>>28)
				f.Write(buf[:min(int64(len(buf)), size-w)])
			}
			f.Close()
		}
		benchFiles.Store(size, src)
	}
	a, _ := identity.NewAccount(nil)
	ad, _ := a.NewDevice(nil, time.Now(), 0)
	bb, _ := identity.NewAccount(nil)
	bd, _ := bb.NewDevice(nil, time.Now(), 0)
	dst, err := os.MkdirTemp(dir, "peerdrop-bench-dst")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dst) })
	return &benchEnv{src: src, dstDir: dst, size: size, alice: ad, bob: bd, aliceAcct: a.ID(), bobAcct: bb.ID()}
}

func loopbackPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); ch <- c }()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	return c1, <-ch, nil
}

// peakHeap samples the live heap until stop is closed.
func peakHeap(stop <-chan struct{}, out *atomic.Uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > out.Load() {
			out.Store(v)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// oneTransfer runs the real protocol once over tlslink.
func (e *benchEnv) oneTransfer() error {
	c1, c2, err := loopbackPair()
	if err != nil {
		return err
	}
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		l, err := tlslink.Server(ctx, c2, &tlslink.Config{Device: e.bob, PeerAccount: e.aliceAcct, PeerDevice: e.alice.ID()})
		if err != nil {
			errc <- err
			return
		}
		r, err := Receive(ctx, l, nil)
		if err != nil {
			errc <- err
			return
		}
		p, err := r.Accept(ctx, Destination{Dir: e.dstDir})
		if err == nil {
			err = os.Remove(p)
		}
		errc <- err
	}()
	l, err := tlslink.Client(ctx, c1, &tlslink.Config{Device: e.alice, PeerAccount: e.bobAcct, PeerDevice: e.bob.ID()})
	if err != nil {
		return err
	}
	s, err := NewSender(l, Source{Path: e.src}, nil)
	if err != nil {
		return err
	}
	if err := s.Run(ctx); err != nil {
		return err
	}
	return <-errc
}

// oneBaseline copies the file over plain TLS 1.3 with BLAKE3 on both
// sides and an fsynced destination.
func (e *benchEnv) oneBaseline() error {
	c1, c2, err := loopbackPair()
	if err != nil {
		return err
	}
	srvCert := e.bob.TLSCertificate()
	errc := make(chan error, 1)
	go func() {
		tc := tls.Server(c2, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srvCert}})
		defer tc.Close()
		f, err := os.Create(filepath.Join(e.dstDir, "baseline.bin"))
		if err != nil {
			errc <- err
			return
		}
		h := BLAKE3.New()
		buf := make([]byte, 256<<10)
		_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(tc, e.size), buf)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		h.Sum(nil)
		if err == nil {
			_, err = tc.Write([]byte{1}) // acknowledge
		}
		os.Remove(f.Name())
		errc <- err
	}()
	tc := tls.Client(c1, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	defer tc.Close()
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	h := BLAKE3.New()
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(tc, io.TeeReader(f, h), buf); err != nil {
		return err
	}
	h.Sum(nil)
	var ack [1]byte
	if _, err := io.ReadFull(tc, ack[:]); err != nil {
		return err
	}
	return <-errc
}

func benchLoop(b *testing.B, run func(*benchEnv) error) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			e := newBenchEnv(b, size)
			b.SetBytes(size)
			runtime.GC()
			var peak atomic.Uint64
			stop := make(chan struct{})
			go peakHeap(stop, &peak)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := run(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}

func BenchmarkTransfer(b *testing.B) { benchLoop(b, (*benchEnv).oneTransfer) }

func BenchmarkBaseline(b *testing.B) { benchLoop(b, (*benchEnv).oneBaseline) }

// BenchmarkTransferVsBaseline alternates the two so both see the same
// machine state, and reports their throughputs and ratio.
func BenchmarkTransferVsBaseline(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			e := newBenchEnv(b, size)
			var tt, tb time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := e.oneBaseline(); err != nil {
					b.Fatal(err)
				}
				tb += time.Since(start)
				start = time.Now()
				if err := e.oneTransfer(); err != nil {
					b.Fatal(err)
				}
				tt += time.Since(start)
			}
			mbT := float64(size) * float64(b.N) / tt.Seconds() / 1e6
			mbB := float64(size) * float64(b.N) / tb.Seconds() / 1e6
			b.ReportMetric(mbT, "transfer-MB/s")
			b.ReportMetric(mbB, "baseline-MB/s")
			b.ReportMetric(mbT/mbB, "ratio")
		})
	}
}
