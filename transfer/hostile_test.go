package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerdrop/peerdrop/internal/testenv"
)

func testOffer(size int64) *Offer {
	return &Offer{ID: NewID(), Name: "f.bin", Size: size, MediaType: "application/octet-stream", Digest: BLAKE3}
}

// hostileSender plays a sender that writes script after the header, and
// returns what the receiver's Accept returned and what is left in dir.
func hostileSender(t *testing.T, size int64, script func(p rawPeer)) ([]string, error) {
	t.Helper()
	dir := t.TempDir()
	a, b := net_pipe(t)
	p := rawPeer{a}
	go func() {
		p.hello()
		p.frame(frameHeader, appendHeader(nil, testOffer(size)))
		script(p)
	}()
	cfg := fastCfg()
	cfg.IdleTimeout = 300 * time.Millisecond
	r, err := Receive(context.Background(), b, cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	_, err = r.Accept(context.Background(), Destination{Dir: dir})
	a.Close()
	<-r.Done()
	return listDir(t, dir), err
}

func TestHostileSenders(t *testing.T) {
	goOffset := func(p rawPeer) {
		var b [frameHeaderSize + 8]byte
		p.Read(b[:helloSize])
		p.Read(b[:]) // GO
	}
	cases := []struct {
		name   string
		size   int64
		script func(p rawPeer)
		check  func(error) bool
	}{
		{"more data than announced", 10, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, make([]byte, 11))
			p.drain()
		}, func(err error) bool { return strings.Contains(err.Error(), "more data than") }},
		{"END before all data", 100, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, make([]byte, 50))
			p.frame(frameEnd, appendEnd(nil, BLAKE3, make([]byte, 32)))
			p.drain()
		}, func(err error) bool { return errors.Is(err, ErrSizeMismatch) }},
		{"wrong digest", 4, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, []byte("abcd"))
			p.frame(frameEnd, appendEnd(nil, BLAKE3, make([]byte, 32)))
			p.drain()
		}, func(err error) bool { return errors.Is(err, ErrDigestMismatch) }},
		{"END with other algorithm", 0, func(p rawPeer) {
			goOffset(p)
			p.frame(frameEnd, appendEnd(nil, SHA3_256, make([]byte, 32)))
			p.drain()
		}, func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		{"unknown frame type", 10, func(p rawPeer) {
			goOffset(p)
			p.frame(0x7f, nil)
			p.drain()
		}, func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		{"oversized frame", 10, func(p rawPeer) {
			goOffset(p)
			h := appendFrameHeader(nil, frameData, 0)
			binary.BigEndian.PutUint32(h[1:], MaxDataFrame+1)
			p.Write(h)
			p.drain()
		}, func(err error) bool { return strings.Contains(err.Error(), "exceeds limit") }},
		{"header twice", 10, func(p rawPeer) {
			goOffset(p)
			p.frame(frameHeader, appendHeader(nil, testOffer(10)))
			p.drain()
		}, func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		{"empty data frame", 10, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, nil)
			p.drain()
		}, func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		{"stalls mid-stream", 100, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, make([]byte, 10))
			time.Sleep(time.Second)
		}, func(err error) bool { return errors.Is(err, ErrTimeout) }},
		{"vanishes mid-stream", 100, func(p rawPeer) {
			goOffset(p)
			p.frame(frameData, make([]byte, 10))
			p.Close()
		}, func(err error) bool { return strings.Contains(err.Error(), "link failed") }},
	}
	for _, tc := range cases {
		// In a synctest bubble: the timeouts run on a fake clock.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				left, err := hostileSender(t, tc.size, tc.script)
				if err == nil || !tc.check(err) {
					t.Fatalf("got %v", err)
				}
				for _, n := range left {
					if !strings.HasSuffix(n, ".part") {
						t.Fatalf("published %s from a hostile sender", n)
					}
				}
				time.Sleep(2 * time.Second) // (fake) the script may still sleep: let it end
			})
		})
	}
}

func TestHostileHello(t *testing.T) {
	for name, tc := range map[string]struct {
		bytes []byte
		check func(error) bool
	}{
		"bad magic":     {[]byte("HTTP/1.1 200"), func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		"other version": {[]byte("PDXF\x02"), func(err error) bool { var ve *VersionError; return errors.As(err, &ve) && ve.Got == 2 }},
		"data first":    {append(appendHello(nil), append(appendFrameHeader(nil, frameData, 1), 0)...), func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		"truncated":     {[]byte("PD"), func(err error) bool { return err != nil }},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := net_pipe(t)
			go func() { a.Write(tc.bytes); a.Close() }()
			_, err := Receive(context.Background(), b, fastCfg())
			if !tc.check(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestReceiveSilentPeer(t *testing.T) {
	synctest.Test(t, receiveSilentPeer) // the timeouts on a fake clock
}

func receiveSilentPeer(t *testing.T) {
	a, b := net_pipe(t)
	defer a.Close()
	cfg := fastCfg()
	cfg.IdleTimeout = 200 * time.Millisecond
	if _, err := Receive(context.Background(), b, cfg); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	a2, b2 := net_pipe(t)
	defer a2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Receive(ctx, b2, fastCfg()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// hostileReceiver plays a receiver that answers the offer with script.
func hostileReceiver(t *testing.T, script func(p rawPeer)) error {
	t.Helper()
	src, _ := writeRandom(t, t.TempDir(), "f", 1000)
	a, b := net_pipe(t)
	p := rawPeer{b}
	go func() {
		readOffer(newConn(nopCloser{b}))
		script(p)
	}()
	cfg := fastCfg()
	cfg.IdleTimeout = 300 * time.Millisecond
	cfg.DecisionTimeout = 300 * time.Millisecond
	s, err := NewSender(a, Source{Path: src}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	b.Close()
	return err
}

type nopCloser struct{ rawConn }
type rawConn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}

func (nopCloser) Close() error { return nil }

func TestHostileReceivers(t *testing.T) {
	isProto := func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }
	cases := map[string]struct {
		script func(p rawPeer)
		check  func(error) bool
	}{
		"offset beyond size": {func(p rawPeer) { p.hello(); p.frame(frameGo, appendGo(nil, 5000)); p.drain() }, isProto},
		"garbage GO":         {func(p rawPeer) { p.hello(); p.frame(frameGo, []byte{1}); p.drain() }, isProto},
		"data from receiver": {func(p rawPeer) { p.hello(); p.frame(frameData, []byte{1}); p.drain() }, isProto},
		"never decides": {func(p rawPeer) { time.Sleep(time.Second) }, func(err error) bool {
			var ce *CancelError
			return errors.As(err, &ce) && ce.Code == CancelTimeout
		}},
		"hangs up":  {func(p rawPeer) { p.Close() }, func(err error) bool { return strings.Contains(err.Error(), "link failed") }},
		"no ACK":    {func(p rawPeer) { p.hello(); p.frame(frameGo, appendGo(nil, 0)); time.Sleep(time.Second) }, func(err error) bool { return err != nil }},
		"bad magic": {func(p rawPeer) { p.Write([]byte("XXXXX")); p.drain() }, isProto},
		"unknown ACK": {func(p rawPeer) {
			p.hello()
			p.frame(frameGo, appendGo(nil, 0))
			var buf [2048]byte
			n := 0
			for n < frameHeaderSize+1000+frameHeaderSize+2+32 {
				m, err := p.Read(buf[:])
				if err != nil {
					return
				}
				n += m
			}
			p.frame(frameAck, []byte{9, 0, 0})
			p.drain()
		}, isProto},
	}
	for name, tc := range cases {
		// In a synctest bubble: the timeouts run on a fake clock.
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				err := hostileReceiver(t, tc.script)
				if err == nil || !tc.check(err) {
					t.Fatalf("got %v", err)
				}
				time.Sleep(2 * time.Second) // (fake) the script may still sleep: let it end
			})
		})
	}
}

// TestDiskFull receives into a 1 MiB tmpfs: the receiver fails with
// ENOSPC, tells the sender, and keeps the partial file.
func TestDiskFull(t *testing.T) {
	testenv.NeedRoot(t, "mounts a small tmpfs to fill it")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Skip(t, "cannot mount tmpfs: "+string(out))
	}
	defer exec.Command("umount", dir).Run()
	src, _ := writeRandom(t, t.TempDir(), "big", 4<<20)
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), acceptInto(dir))
	if !errors.Is(o.recvErr, syscall.ENOSPC) {
		t.Fatalf("receiver: %v", o.recvErr)
	}
	var ce *CancelError
	if !errors.As(o.sendErr, &ce) || ce.Code != CancelIO || !ce.Remote || !strings.Contains(ce.Reason, "no space") {
		t.Fatalf("sender: %v", o.sendErr)
	}
	names := listDir(t, dir)
	if len(names) != 1 || !strings.HasSuffix(names[0], ".part") {
		t.Fatalf("dir: %v", names)
	}
	st, _ := os.Stat(filepath.Join(dir, names[0]))
	if st.Size() == 0 {
		t.Fatal("partial file lost")
	}
}
