package transfer

import (
	"github.com/peerdrop/peerdrop/internal/testfile"

	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/internal/testnet"
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchFiles.Range(func(_, p any) bool { os.Remove(p.(string)); return true })
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fastCfg keeps timeouts short and reports every progress step.
func fastCfg() *Config {
	return &Config{ChunkSize: 64 << 10, IdleTimeout: 2 * time.Second, LingerTimeout: 500 * time.Millisecond, ProgressInterval: time.Nanosecond}
}

func writeRandom(t testing.TB, dir, name string, size int) (string, []byte) {
	t.Helper()
	return testfile.Random(t, dir, name, int64(size))
}

var tcpPair = testnet.TCPPair

type pairFunc func(testing.TB) (net.Conn, net.Conn)

var pairs = map[string]pairFunc{
	"pipe": func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() },
	"tcp":  tcpPair,
}

// run sends src over a fresh pair and lets decide act on the receiver.
// It returns the sender's and the receiver's results.
type outcome struct {
	sendErr error
	sender  *Sender
	recv    *Receiver
	recvErr error // from Receive, or from decide
	path    string
}

func run(t *testing.T, pair pairFunc, src Source, scfg, rcfg *Config, decide func(*Receiver) (string, error)) outcome {
	t.Helper()
	a, b := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var o outcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := Receive(ctx, b, rcfg)
		o.recv, o.recvErr = r, err
		if err != nil {
			return
		}
		o.path, o.recvErr = decide(r)
		<-r.Done()
	}()
	s, err := NewSender(a, src, scfg)
	if err != nil {
		t.Fatal(err)
	}
	o.sender = s
	o.sendErr = s.Run(ctx)
	wg.Wait()
	return o
}

func acceptInto(dir string) func(*Receiver) (string, error) {
	return func(r *Receiver) (string, error) {
		return r.Accept(context.Background(), Destination{Dir: dir})
	}
}

func mustEqualFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// rawPeer drives one end of a pipe by hand, to play a hostile peer.
type rawPeer struct {
	net.Conn
}

func (p rawPeer) frame(t frameType, payload []byte) error {
	_, err := p.Write(append(appendFrameHeader(nil, t, len(payload)), payload...))
	return err
}

func (p rawPeer) hello() error {
	_, err := p.Write(appendHello(nil))
	return err
}

// drain reads everything the other side writes until it closes.
func (p rawPeer) drain() { io.Copy(io.Discard, p) }
