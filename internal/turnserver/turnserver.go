// Package turnserver runs a real coturn TURN server on loopback for tests:
// STUN and TURN over TCP, with RFC 6062 TCP relays, long-term credentials,
// on random ports, stopped and waited for at test cleanup.
package turnserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/internal/testenv"
)

// Server is a running coturn.
type Server struct {
	Addr     netip.AddrPort // the STUN/TURN listener (TCP and UDP)
	User     string
	Password string
	Realm    string
	TLSPort  int // the turns: listener's port on Addr's IP; 0 if none

	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// TURNSURL is the server's turns: URL (TURN over TLS); "" without a TLS
// listener.
func (s *Server) TURNSURL() string {
	if s.TLSPort == 0 {
		return ""
	}
	return "turns:" + netip.AddrPortFrom(s.Addr.Addr(), uint16(s.TLSPort)).String() + "?transport=tcp"
}

// TURNURL is the server's turn: URL over TCP.
func (s *Server) TURNURL() string { return "turn:" + s.Addr.String() + "?transport=tcp" }

// STUNURL is the server's stun: URL.
func (s *Server) STUNURL() string { return "stun:" + s.Addr.String() }

// Log returns what coturn printed so far.
func (s *Server) Log() string { return s.log.String() }

// Start runs coturn on 127.0.0.1 (or skips the test when turnserver is not
// installed, failing instead under PEERDROP_REQUIRE_ALL). It is stopped when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// Options place a coturn elsewhere than on loopback.
type Options struct {
	// Exec prefixes the command, e.g. ip netns exec NS. Default: none.
	Exec []string
	// IP is the listening and relay address. Default: 127.0.0.1 (with
	// loopback peers allowed).
	IP netip.Addr
	// Port is the listening port. Default: a free port on loopback.
	Port int
	// RelayIP is the relayed addresses' IP. Default: IP.
	RelayIP netip.Addr
	// AltIP, if set, is a second listening address: with it coturn
	// answers RFC 5780 CHANGE-REQUESTs (from AltIP and from Port+1), which
	// miniupnpd's ext_perform_stun needs. Default: none.
	AltIP netip.Addr
	// TLSPort, with CertFile and KeyFile (PEM), adds a TLS listener
	// (turns:, RFC 7065) on IP:TLSPort. Default: none.
	TLSPort           int
	CertFile, KeyFile string
	// Dial reaches the server to see that it listens (from inside its
	// namespace, say). Default: a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// StartWith runs coturn as opts say; see Start.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testenv.NeedCommand(t, "turnserver", "the coturn package provides the real TURN server these tests relay through")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(t, bin, opts)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("turnserver: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, opts Options) (*Server, error) {
	dir := t.TempDir()
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	ip := opts.IP
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	relayIP := opts.RelayIP
	if !relayIP.IsValid() {
		relayIP = ip
	}
	// Relay ports from a random 1000-port window, so that parallel servers
	// rarely collide.
	minPort := 20000 + 1000*(port%40)
	s := &Server{
		Addr:     netip.AddrPortFrom(ip, uint16(port)),
		User:     "peerdrop",
		Password: "test-password",
		Realm:    "peerdrop.test",
		log:      &syncBuffer{},
		done:     make(chan struct{}),
	}
	tlsArgs := []string{"--no-tls"}
	if opts.TLSPort != 0 {
		s.TLSPort = opts.TLSPort
		tlsArgs = []string{"--tls-listening-port=" + strconv.Itoa(opts.TLSPort), "--cert=" + opts.CertFile, "--pkey=" + opts.KeyFile}
		if opts.AltIP.IsValid() {
			tlsArgs = append(tlsArgs, "--alt-tls-listening-port="+strconv.Itoa(opts.TLSPort+1))
		}
	}
	args := []string{
		"-n", "--no-cli", "--no-dtls",
		"--listening-ip=" + ip.String(), "--relay-ip=" + relayIP.String(),
		"--listening-port=" + strconv.Itoa(port),
		"--min-port=" + strconv.Itoa(minPort), "--max-port=" + strconv.Itoa(minPort+999),
		"--lt-cred-mech", "--user=" + s.User + ":" + s.Password, "--realm=" + s.Realm,
		"--no-software-attribute",
		"--userdb=" + filepath.Join(dir, "turndb"), "--pidfile=" + filepath.Join(dir, "pid"),
		"--log-file=stdout", "--simple-log", "--no-stdout-log",
	}
	args = append(args, tlsArgs...)
	if ip.IsLoopback() || relayIP.IsLoopback() {
		args = append(args, "--allow-loopback-peers")
	}
	if opts.AltIP.IsValid() {
		args = append(args, "--listening-ip="+opts.AltIP.String(), "--alt-listening-port="+strconv.Itoa(port+1))
	}
	argv := append(append(append([]string(nil), opts.Exec...), bin), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	dial := opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("turnserver exited at start: %s", s.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := dial(ctx, "tcp", s.Addr.String())
		cancel()
		if err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("turnserver did not listen on %s within 5s: %s", s.Addr, s.log.String())
}

// Stop kills the server and waits for it (also done at test cleanup).
func (s *Server) Stop() { s.stop() }

func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	// coturn also binds the UDP port of the same number.
	port := ln.Addr().(*net.TCPAddr).Port
	pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0, err
	}
	pc.Close()
	return port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
