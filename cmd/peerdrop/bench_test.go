package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	byteorder "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/peerdrop/peerdrop/internal/natlab"
	"github.com/peerdrop/peerdrop/internal/testfile"
)

// BenchmarkCLIThroughput sends one file (PEERDROP_BENCH_SIZE bytes,
// default 1 GiB; files in PEERDROP_BENCH_DIR, e.g. /dev/shm) from a
// whole "peerdrop send" process to a running "peerdrop recv --yes", and,
// alternating in the same run, copies it between two processes of a raw
// copier with what the CLI cannot do without: TLS 1.3 over loopback TCP,
// BLAKE3 on both sides, the destination fsynced (this test binary, run
// as PEERDROP_RAWCOPY=send|recv). Both clocks run from starting the
// sending process to its exit, with the receiving process already
// running; it reports both rates and their ratio (target ≥ 0.9).
func BenchmarkCLIThroughput(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("PEERDROP_BENCH_SIZE"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = v
	}
	dir := b.TempDir()
	if d := os.Getenv("PEERDROP_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "peerdrop-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	src, _ := testfile.Random(b, dir, "big.bin", size)
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o700)

	node := natlab.StartProc(b, natlab.CleanEnv(b.TempDir()), "", binary, "dht-node", "--listen", "127.0.0.1:0", "--json")
	boot := node.Next(10*time.Second, "listening", nil)["addr"].(string)
	environ := natlab.CleanEnv(b.TempDir(), "PEERDROP_BOOTSTRAP="+boot, "PEERDROP_LISTEN=127.0.0.1:0")
	home := func(n string) string { return filepath.Join(dir, n) }
	run := func(args ...string) string {
		c := exec.Command(binary, args...)
		c.Env = environ
		out, err := c.Output()
		if err != nil {
			b.Fatalf("peerdrop %v: %v", args, err)
		}
		return string(out)
	}
	contact := func(who string) string {
		c := exec.Command(binary, "--home", home(who), "--json", "init", "--name", who)
		c.Env = environ
		out, err := c.Output()
		if err != nil {
			b.Fatal(err)
		}
		var ev map[string]any
		json.Unmarshal(bytes.SplitN(out, []byte("\n"), 2)[0], &ev)
		return ev["contact"].(string)
	}
	alice, bob := contact("alice"), contact("bob")
	run("--home", home("alice"), "contact", "add", bob)
	run("--home", home("bob"), "contact", "add", alice)
	rx := natlab.StartProc(b, environ, "", binary, "--home", home("bob"), "--json", "recv", "--yes", "--dir", inbox)
	rx.Next(30*time.Second, "ready", nil)
	defer rx.Kill()
	send := func() time.Duration {
		c := exec.Command(binary, "--home", home("alice"), "send", "bob", src)
		c.Env = environ
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("send: %v\n%s", err, out)
		}
		d := time.Since(start)
		rx.Next(30*time.Second, "state", func(ev map[string]any) bool { return ev["state"] == "finished" })
		clearDir(b, inbox)
		return d
	}
	send() // the first send makes the first contact: not measured

	var cli, raw time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw += rawCopy(b, src, filepath.Join(inbox, "raw.bin"))
		clearDir(b, inbox)
		cli += send()
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(cli), "cli-MB/s")
	b.ReportMetric(mbps(raw), "raw-MB/s")
	b.ReportMetric(raw.Seconds()/cli.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

func clearDir(b *testing.B, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// rawCopy copies src to dst between two processes of the raw copier and
// returns the time from starting the sender to its exit.
func rawCopy(b *testing.B, src, dst string) time.Duration {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	rx := exec.Command(self)
	rx.Env = append(os.Environ(), "PEERDROP_RAWCOPY=recv", "PEERDROP_RAWCOPY_FILE="+dst)
	out, _ := rx.StdoutPipe()
	rx.Stderr = os.Stderr
	if err := rx.Start(); err != nil {
		b.Fatal(err)
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("raw receiver: %v", err)
	}
	tx := exec.Command(self)
	tx.Env = append(os.Environ(), "PEERDROP_RAWCOPY=send", "PEERDROP_RAWCOPY_FILE="+src, "PEERDROP_RAWCOPY_ADDR="+strings.TrimSpace(addr))
	tx.Stderr = os.Stderr
	start := time.Now()
	if err := tx.Run(); err != nil {
		b.Fatalf("raw sender: %v", err)
	}
	d := time.Since(start)
	if err := rx.Wait(); err != nil {
		b.Fatalf("raw receiver: %v", err)
	}
	return d
}

// rawCopyMain runs one side of the raw copier (see BenchmarkCLIThroughput).
func rawCopyMain(role string) error {
	path := os.Getenv("PEERDROP_RAWCOPY_FILE")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	buf := make([]byte, 1<<20)
	if role == "recv" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Println(l.Addr())
		c, err := l.Accept()
		if err != nil {
			return err
		}
		conn := tls.Server(c, cfg)
		defer conn.Close()
		var hdr [8]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return err
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		h := blake3.New()
		if _, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(conn, int64(byteorder.BigEndian.Uint64(hdr[:]))), buf); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		_, err = conn.Write(h.Sum(nil))
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", os.Getenv("PEERDROP_RAWCOPY_ADDR"))
	if err != nil {
		return err
	}
	conn := tls.Client(c, cfg)
	defer conn.Close()
	var hdr [8]byte
	byteorder.BigEndian.PutUint64(hdr[:], uint64(fi.Size()))
	if _, err := conn.Write(hdr[:]); err != nil {
		return err
	}
	h := blake3.New()
	if _, err := io.CopyBuffer(conn, io.TeeReader(f, h), buf); err != nil {
		return err
	}
	got := make([]byte, 32)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		return fmt.Errorf("digest mismatch")
	}
	return nil
}
