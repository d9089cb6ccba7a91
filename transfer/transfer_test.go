package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTransferSizes(t *testing.T) {
	for pname, pair := range pairs {
		for _, alg := range []DigestAlgorithm{BLAKE3, SHA3_256} {
			for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 3*(64<<10) + 7} {
				t.Run(pname+"/"+alg.String()+"/"+itoa(size), func(t *testing.T) {
					dir := t.TempDir()
					src, data := writeRandom(t, t.TempDir(), "photo.jpg", size)
					var mu sync.Mutex
					var events []Event
					scfg := fastCfg()
					scfg.Digest = alg
					scfg.OnEvent = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
					o := run(t, pair, Source{Path: src}, scfg, fastCfg(), acceptInto(dir))
					if o.sendErr != nil || o.recvErr != nil {
						t.Fatalf("send %v, recv %v", o.sendErr, o.recvErr)
					}
					if o.path != filepath.Join(dir, "photo.jpg") {
						t.Fatalf("saved as %s", o.path)
					}
					mustEqualFile(t, o.path, data)
					if names := listDir(t, dir); len(names) != 1 {
						t.Fatalf("leftovers in download dir: %v", names)
					}
					st := o.sender.Status()
					if st.State != StateFinished || st.Bytes != int64(size) || st.Total != int64(size) {
						t.Fatalf("sender status %+v", st)
					}
					rs := o.recv.Status()
					if rs.State != StateFinished || rs.Path != o.path || rs.Bytes != int64(size) {
						t.Fatalf("receiver status %+v", rs)
					}
					if o.recv.Offer().MediaType != "image/jpeg" || o.recv.Offer().Digest != alg {
						t.Fatalf("offer %+v", o.recv.Offer())
					}
					mu.Lock()
					defer mu.Unlock()
					if events[0].State != StateAwaitingPeer || events[len(events)-1].State != StateFinished {
						t.Fatalf("events %v ... %v", events[0], events[len(events)-1])
					}
				})
			}
		}
	}
}

func TestTransferMetadataAndPath(t *testing.T) {
	dir := t.TempDir()
	src, data := writeRandom(t, t.TempDir(), "a.bin", 1000)
	meta := map[string]string{"conversation": "42", "caption": "héllo"}
	o := run(t, net_pipe, Source{Path: src, Name: "../../etc/passwd", Metadata: meta}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		if r.Offer().Metadata["caption"] != "héllo" || len(r.Offer().Metadata) != 2 {
			t.Errorf("metadata %v", r.Offer().Metadata)
		}
		if r.Offer().SafeName() != "etc_passwd" {
			t.Errorf("safe name %q", r.Offer().SafeName())
		}
		return r.Accept(context.Background(), Destination{Path: filepath.Join(dir, "chosen.bin")})
	})
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
	mustEqualFile(t, filepath.Join(dir, "chosen.bin"), data)
}

func TestTransferNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "report.pdf"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(dir, "report (1).pdf"), []byte("mine too"), 0o644)
	src, data := writeRandom(t, t.TempDir(), "report.pdf", 5000)
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), acceptInto(dir))
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
	if o.path != filepath.Join(dir, "report (2).pdf") {
		t.Fatalf("saved as %s", o.path)
	}
	mustEqualFile(t, o.path, data)
	mustEqualFile(t, filepath.Join(dir, "report.pdf"), []byte("mine"))
}

var net_pipe = pairs["pipe"]

func TestRefuse(t *testing.T) {
	for pname, pair := range pairs {
		t.Run(pname, func(t *testing.T) {
			src, _ := writeRandom(t, t.TempDir(), "x", 100)
			start := time.Now()
			o := run(t, pair, Source{Path: src}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
				return "", r.Refuse("not now")
			})
			var re *RefusedError
			if !errors.As(o.sendErr, &re) || re.Reason != "not now" {
				t.Fatalf("sender: %v", o.sendErr)
			}
			if o.sender.Status().State != StateRefused || o.recv.Status().State != StateRefused {
				t.Fatalf("states %v %v", o.sender.Status().State, o.recv.Status().State)
			}
			if time.Since(start) > 400*time.Millisecond {
				t.Fatalf("refuse took %v: someone waited for a linger timeout", time.Since(start))
			}
		})
	}
}

func wantCancel(t *testing.T, err error, remote bool, reason string) {
	t.Helper()
	var ce *CancelError
	if !errors.As(err, &ce) || ce.Remote != remote || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("got %v, want cancel remote=%v reason %q", err, remote, reason)
	}
}

func TestCancelBySenderBeforeGo(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "x", 100)
	a, b := tcpPair(t)
	s, err := NewSender(a, Source{Path: src}, fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.Run(context.Background()) }()
	r, err := Receive(context.Background(), b, fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	s.Cancel("changed my mind")
	wantCancel(t, <-sendErr, false, "changed my mind")
	<-r.Done()
	wantCancel(t, r.Status().Err, true, "changed my mind")
	if _, err := r.Accept(context.Background(), Destination{Dir: t.TempDir()}); err == nil {
		t.Fatal("accepted a canceled offer")
	}
}

func TestCancelBySenderBeforeHeader(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "x", 100)
	a, b := net_pipe(t)
	s, _ := NewSender(a, Source{Path: src}, fastCfg())
	s.Cancel("never mind")
	go s.Run(context.Background())
	_, err := Receive(context.Background(), b, fastCfg())
	wantCancel(t, err, true, "never mind")
	<-s.Done()
}

func TestCancelByReceiverBeforeGo(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "x", 100)
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		r.Cancel("busy")
		return "", nil
	})
	wantCancel(t, o.sendErr, true, "busy")
	wantCancel(t, o.recv.Status().Err, false, "busy")
}

// cancelMidStream cancels from one side once a quarter of the file moved.
func cancelMidStream(t *testing.T, pair pairFunc, bySender bool) (outcome, string) {
	dir := t.TempDir()
	src, _ := writeRandom(t, t.TempDir(), "big.bin", 8<<20)
	var s *Sender
	var once sync.Once
	var sOnce sync.Mutex
	scfg, rcfg := fastCfg(), fastCfg()
	trigger := func(e Event) {
		if e.Progress && e.Bytes > 2<<20 {
			once.Do(func() {
				if bySender {
					sOnce.Lock()
					s.Cancel("stop please")
					sOnce.Unlock()
				}
			})
		}
	}
	var recv *Receiver
	var rmu sync.Mutex
	if bySender {
		scfg.OnEvent = trigger
	} else {
		rcfg.OnEvent = func(e Event) {
			if e.Progress && e.Bytes > 2<<20 {
				once.Do(func() { rmu.Lock(); recv.Cancel("stop please"); rmu.Unlock() })
			}
		}
	}
	a, b := pair(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	var o outcome
	go func() {
		defer wg.Done()
		r, err := Receive(ctx, b, rcfg)
		if err != nil {
			o.recvErr = err
			return
		}
		rmu.Lock()
		recv = r
		rmu.Unlock()
		o.recv = r
		o.path, o.recvErr = r.Accept(ctx, Destination{Dir: dir})
	}()
	sOnce.Lock()
	s, _ = NewSender(a, Source{Path: src}, scfg)
	sOnce.Unlock()
	o.sender = s
	o.sendErr = s.Run(ctx)
	wg.Wait()
	return o, dir
}

func TestCancelMidStream(t *testing.T) {
	for pname, pair := range pairs {
		for _, bySender := range []bool{true, false} {
			t.Run(pname+map[bool]string{true: "/by sender", false: "/by receiver"}[bySender], func(t *testing.T) {
				start := time.Now()
				o, dir := cancelMidStream(t, pair, bySender)
				wantCancel(t, o.sendErr, !bySender, "stop please")
				wantCancel(t, o.recvErr, bySender, "stop please")
				if o.sender.Status().State != StateCanceled || o.recv.Status().State != StateCanceled {
					t.Fatal("states not canceled")
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("cancel took %v", d)
				}
				// The partial file is kept for a resume; nothing was published.
				names := listDir(t, dir)
				if len(names) != 1 || !strings.HasSuffix(names[0], ".part") {
					t.Fatalf("download dir: %v", names)
				}
				st, _ := os.Stat(filepath.Join(dir, names[0]))
				if st.Size() == 0 || st.Size() >= 8<<20 {
					t.Fatalf("partial has %d bytes", st.Size())
				}
			})
		}
	}
}

func TestCancelByContext(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "x", 100)
	a, b := net_pipe(t)
	s, _ := NewSender(a, Source{Path: src}, fastCfg())
	ctx, cancel := context.WithCancelCause(context.Background())
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.Run(ctx) }()
	r, err := Receive(context.Background(), b, fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	cancel(errors.New("app is quitting"))
	wantCancel(t, <-sendErr, false, "app is quitting")
	<-r.Done()
	wantCancel(t, r.Status().Err, true, "app is quitting")
}

func TestResume(t *testing.T) {
	o, dir := cancelMidStream(t, tcpPair, false)
	wantCancel(t, o.recvErr, false, "stop please")
	partial := filepath.Join(dir, partialName(o.sender.Offer().ID))
	st, err := os.Stat(partial)
	if err != nil {
		t.Fatal(err)
	}
	// Second attempt: same file, same ID.
	srcPath := o.sender.path
	data, _ := os.ReadFile(srcPath)
	o2 := run(t, tcpPair, Source{Path: srcPath, ID: o.sender.Offer().ID}, fastCfg(), fastCfg(), acceptInto(dir))
	if o2.sendErr != nil || o2.recvErr != nil {
		t.Fatal(o2.sendErr, o2.recvErr)
	}
	if got := o2.sender.Status().Offset; got != st.Size() {
		t.Fatalf("resumed from %d, partial had %d", got, st.Size())
	}
	mustEqualFile(t, o2.path, data)
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("partial left behind")
	}
}

func TestResumeDigestMismatch(t *testing.T) {
	dir := t.TempDir()
	src, data := writeRandom(t, t.TempDir(), "doc.txt", 300<<10)
	id := NewID()
	// A partial whose bytes differ from the file: the resumed transfer
	// must fail verification and publish nothing.
	bad := append([]byte(nil), data[:100<<10]...)
	bad[500] ^= 0xff
	os.WriteFile(filepath.Join(dir, partialName(id)), bad, 0o644)
	o := run(t, net_pipe, Source{Path: src, ID: id}, fastCfg(), fastCfg(), acceptInto(dir))
	if !errors.Is(o.sendErr, ErrDigestMismatch) || !errors.Is(o.recvErr, ErrDigestMismatch) {
		t.Fatalf("send %v, recv %v", o.sendErr, o.recvErr)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("download dir not empty: %v", names)
	}
	// A retry without the bad partial succeeds.
	o = run(t, net_pipe, Source{Path: src, ID: id}, fastCfg(), fastCfg(), acceptInto(dir))
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
	mustEqualFile(t, o.path, data)
}

func TestNoResumeOption(t *testing.T) {
	dir := t.TempDir()
	src, data := writeRandom(t, t.TempDir(), "f", 200<<10)
	id := NewID()
	os.WriteFile(filepath.Join(dir, partialName(id)), []byte("garbage"), 0o644)
	o := run(t, net_pipe, Source{Path: src, ID: id}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		return r.Accept(context.Background(), Destination{Dir: dir, NoResume: true})
	})
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
	if o.sender.Status().Offset != 0 {
		t.Fatal("resumed despite NoResume")
	}
	mustEqualFile(t, o.path, data)
}

func TestSenderFileErrors(t *testing.T) {
	a, b := net_pipe(t)
	defer b.Close()
	if _, err := NewSender(a, Source{Path: filepath.Join(t.TempDir(), "missing")}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	a, b = net_pipe(t)
	defer b.Close()
	if _, err := NewSender(a, Source{Path: t.TempDir()}, nil); err == nil {
		t.Fatal("sent a directory")
	}
}

func TestSenderFileShrinks(t *testing.T) {
	dir := t.TempDir()
	src, _ := writeRandom(t, t.TempDir(), "f", 1<<20)
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		os.Truncate(src, 100) // the file changes under the sender
		return r.Accept(context.Background(), Destination{Dir: dir})
	})
	if !errors.Is(o.sendErr, ErrSizeMismatch) {
		t.Fatalf("sender: %v", o.sendErr)
	}
	var ce *CancelError
	if !errors.As(o.recvErr, &ce) || ce.Code != CancelIO || !ce.Remote {
		t.Fatalf("receiver: %v", o.recvErr)
	}
}

func TestAcceptTwice(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "f", 10)
	dir := t.TempDir()
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		p, err := r.Accept(context.Background(), Destination{Dir: dir})
		if _, err2 := r.Accept(context.Background(), Destination{Dir: dir}); err2 == nil {
			t.Error("second Accept succeeded")
		}
		if err2 := r.Refuse("late"); err2 == nil {
			t.Error("Refuse after Accept succeeded")
		}
		return p, err
	})
	if o.sendErr != nil || o.recvErr != nil {
		t.Fatal(o.sendErr, o.recvErr)
	}
}

func TestAcceptBadDestination(t *testing.T) {
	src, _ := writeRandom(t, t.TempDir(), "f", 10)
	o := run(t, net_pipe, Source{Path: src}, fastCfg(), fastCfg(), func(r *Receiver) (string, error) {
		return r.Accept(context.Background(), Destination{Dir: "/nonexistent/dir"})
	})
	if o.recvErr == nil {
		t.Fatal("accepted into a missing directory")
	}
	var ce *CancelError
	if !errors.As(o.sendErr, &ce) || ce.Code != CancelIO {
		t.Fatalf("sender: %v", o.sendErr)
	}
}
