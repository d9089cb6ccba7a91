package natlab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a running command whose stdout is JSON lines (peerdrop --json):
// its events can be awaited one by one.
type Proc struct {
	t      testing.TB
	Cmd    *exec.Cmd
	events chan map[string]any
	Stderr *SyncBuffer
	done   chan struct{}
	code   int
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CleanEnv is the environment without the caller's PEERDROP_* variables
// and HOME, plus extra.
func CleanEnv(home string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEERDROP_") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	// A race-enabled binary otherwise sleeps 1s at exit (TSan's default).
	out = append(out, "HOME="+home, "GORACE=atexit_sleep_ms=0")
	return append(out, extra...)
}

// StartProc runs argv with env and stdin; the process is killed, if still
// running, when the test ends.
func StartProc(t testing.TB, env []string, stdin string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, events: make(chan map[string]any, 1<<16), Stderr: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Env = env
	p.Cmd.Stdin = strings.NewReader(stdin)
	p.Cmd.Stderr = p.Stderr
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := p.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = map[string]any{"event": "text", "text": sc.Text()}
			}
			select {
			case p.events <- ev:
			default: // a test that never reads: drop, never block the process
			}
		}
		p.Cmd.Wait()
		p.code = p.Cmd.ProcessState.ExitCode()
		close(p.events)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Kill kills the process and waits for it.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
}

// Signal sends sig.
func (p *Proc) Signal(sig os.Signal) { p.Cmd.Process.Signal(sig) }

// Wait waits for the exit and returns the status; the test fails if it
// takes longer than within.
func (p *Proc) Wait(within time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		p.Kill()
		p.t.Fatalf("%v did not exit within %v; stderr:\n%s", p.Cmd.Args, within, p.Stderr)
		return -1
	}
}

// Next returns the next event of the kind (where f, if given, holds),
// failing the test after within or if the process exits first.
func (p *Proc) Next(within time.Duration, kind string, f func(map[string]any) bool) map[string]any {
	p.t.Helper()
	ev, err := p.TryNext(within, kind, f)
	if err != "" {
		p.t.Fatalf("%v: %s; stderr:\n%s", p.Cmd.Args, err, p.Stderr)
	}
	return ev
}

// TryNext is Next that reports instead of failing.
func (p *Proc) TryNext(within time.Duration, kind string, f func(map[string]any) bool) (map[string]any, string) {
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				<-p.done
				return nil, "exited (status " + itoa(p.code) + ") before a " + kind + " event"
			}
			if ev["event"] == kind && (f == nil || f(ev)) {
				return ev, ""
			}
		case <-timeout:
			return nil, "no " + kind + " event within " + within.String()
		}
	}
}

// Rest drains the events of an exited process.
func (p *Proc) Rest() []map[string]any {
	<-p.done
	var out []map[string]any
	for ev := range p.events {
		out = append(out, ev)
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
