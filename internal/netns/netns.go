// Package netns creates Linux network namespaces for tests, so that
// traffic a test sends (LAN multicast, NAT traversal) stays inside
// networks the test built and removes. It needs root and iproute2; New
// skips (or fails, see testenv) without them.
package netns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/peerdrop/peerdrop/internal/testenv"
)

// NS is a network namespace created by New.
type NS struct {
	Name string
}

var counter atomic.Int64

// New creates a namespace with its loopback up; it is removed, with every
// process in it killed, when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	if runtime.GOOS != "linux" {
		testenv.Skip(t, "network namespaces need Linux")
	}
	testenv.NeedRoot(t, "creates network namespaces")
	testenv.NeedCommand(t, "ip", "creates network namespaces (iproute2)")
	ns := &NS{Name: fmt.Sprintf("pdt-%d-%d", os.Getpid(), counter.Add(1))}
	Delete(ns.Name) // a crashed run with a recycled PID
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	t.Cleanup(func() { Delete(ns.Name) })
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// Delete kills the processes in the namespace and deletes it. It is
// idempotent, so a crashed run can be cleaned with it.
func Delete(name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// IP runs `ip -n NS args...` and fails the test on error.
func (n *NS) IP(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"-n", n.Name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out.String())
	}
}

// Do runs f on an OS thread inside the namespace. Sockets f opens belong
// to the namespace for their whole life, whichever thread uses them later.
// Anything else f starts in new goroutines runs outside the namespace.
func (n *NS) Do(f func() error) error {
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the namespace: never unlock it, so the
		// runtime ends the thread with this goroutine.
		panic(fmt.Sprintf("netns: cannot leave %s: %v", n.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Interfaces lists the namespace's interfaces.
func (n *NS) Interfaces() ([]net.Interface, error) {
	var ifs []net.Interface
	err := n.Do(func() (err error) {
		ifs, err = net.Interfaces()
		return err
	})
	return ifs, err
}

// Bridge connects the namespaces with veth pairs to a bridge in a new hub
// namespace and gives host i the address prefix.i/24 (prefix like
// "10.99.0"). It returns each host's address.
func Bridge(t testing.TB, prefix string, hosts ...*NS) []net.IP {
	t.Helper()
	hub := New(t)
	hub.IP(t, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	hub.IP(t, "link", "set", "br0", "up")
	var addrs []net.IP
	for i, h := range hosts {
		port, veth := fmt.Sprintf("p%d", i), fmt.Sprintf("eth%d", i)
		hub.IP(t, "link", "add", port, "type", "veth", "peer", "name", veth, "netns", h.Name)
		hub.IP(t, "link", "set", port, "master", "br0", "up")
		addr := fmt.Sprintf("%s.%d", prefix, i+1)
		h.IP(t, "addr", "add", addr+"/24", "dev", veth)
		h.IP(t, "link", "set", veth, "up")
		addrs = append(addrs, net.ParseIP(addr))
	}
	return addrs
}

// Dial connects from inside the namespace; the connection stays there.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// DeleteStale deletes the namespaces (and kills their processes) that
// crashed test runs left: those named pdt-PID-N whose process is gone.
// It returns their names.
func DeleteStale() []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var gone []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "pdt-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || unix.Kill(pid, 0) == nil {
			continue // not ours, or its run is alive
		}
		Delete(name)
		gone = append(gone, name)
	}
	return gone
}
