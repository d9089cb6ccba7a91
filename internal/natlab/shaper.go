package natlab

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peerdrop/peerdrop/internal/netns"
)

// Shape is what an access link does to frames, in each direction: netem's
// delay, jitter, loss and rate, done in userspace because these kernels
// have no netem.
type Shape struct {
	Delay  time.Duration // added to every frame
	Jitter time.Duration // plus a uniform random 0..Jitter (frames stay in order)
	Loss   float64       // probability that a frame is dropped, 0..1
	Rate   int64         // bytes per second; 0: unlimited
}

func (s Shape) String() string {
	return fmt.Sprintf("delay %v±%v, loss %.1f%%, rate %d KB/s", s.Delay, s.Jitter, 100*s.Loss, s.Rate/1000)
}

// Shaper copies Ethernet frames between two interfaces of a link
// namespace (AF_PACKET sockets), shaping them; Cut drops everything until
// Restore.
type Shaper struct {
	shape   Shape
	cut     atomic.Bool
	stop    atomic.Bool
	wg      sync.WaitGroup
	fds     [2]int
	Dropped atomic.Int64
	Passed  atomic.Int64
}

// startShaper shapes frames between interfaces a and b of ns.
func startShaper(t testing.TB, ns *netns.NS, a, b string, shape Shape) *Shaper {
	t.Helper()
	s := &Shaper{shape: shape}
	for i, name := range []string{a, b} {
		ns.IP(t, "link", "set", name, "promisc", "on", "up")
		err := ns.Do(func() error {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				unix.Close(fd)
				return err
			}
			tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				unix.Close(fd)
				return err
			}
			s.fds[i] = fd
			return nil
		})
		if err != nil {
			t.Fatalf("shaper on %s/%s: %v", ns.Name, name, err)
		}
	}
	s.wg.Add(2)
	go s.pump(s.fds[0], s.fds[1])
	go s.pump(s.fds[1], s.fds[0])
	t.Cleanup(s.close)
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Cut drops every frame, both ways, until Restore: a link that died.
func (s *Shaper) Cut() { s.cut.Store(true) }

// Restore ends a Cut.
func (s *Shaper) Restore() { s.cut.Store(false) }

func (s *Shaper) close() {
	if s.stop.Swap(true) {
		return
	}
	s.wg.Wait()
	unix.Close(s.fds[0])
	unix.Close(s.fds[1])
}

type frame struct {
	b   []byte
	due time.Time
}

// pump reads frames from in and writes them, shaped, to out.
func (s *Shaper) pump(in, out int) {
	defer s.wg.Done()
	queue := make(chan frame, 4096)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for f := range queue {
			if d := time.Until(f.due); d > 0 {
				time.Sleep(d)
			}
			if s.cut.Load() {
				s.Dropped.Add(1)
				continue
			}
			if _, err := unix.Write(out, f.b); err == nil {
				s.Passed.Add(1)
			}
		}
	}()
	defer func() {
		close(queue)
		writer.Wait()
	}()
	buf := make([]byte, 65536)
	var lastTx, lastDue time.Time // the link's serialization clock; frames stay in order
	for !s.stop.Load() {
		n, from, err := unix.Recvfrom(in, buf, 0)
		if err != nil {
			continue // the receive timeout, to look at stop
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // our own writes to this interface
		}
		if s.cut.Load() || (s.shape.Loss > 0 && rand.Float64() < s.shape.Loss) {
			s.Dropped.Add(1)
			continue
		}
		tx := time.Now()
		if s.shape.Rate > 0 {
			tx = later(tx, lastTx).Add(time.Duration(int64(n) * int64(time.Second) / s.shape.Rate))
			lastTx = tx
		}
		due := tx.Add(s.shape.Delay)
		if s.shape.Jitter > 0 {
			due = due.Add(time.Duration(rand.Int64N(int64(s.shape.Jitter))))
		}
		due = later(due, lastDue)
		lastDue = due
		select {
		case queue <- frame{b: append([]byte(nil), buf[:n]...), due: due}:
		default:
			s.Dropped.Add(1) // tail drop
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
