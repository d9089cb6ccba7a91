package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/transfer"
)

// One running node per device. "peerdrop recv" holds the home's Node and
// serves a control socket in the home (control.sock, 0600 in the 0700
// home: only its user reaches it; no TCP port). "send" and "resume" find
// it and run inside the receiving process, on its Node, instead of
// opening the home themselves, which a running recv holds. The command
// runs in the daemon as it would have run locally, with its output
// (progress bars included when the client's terminal shows them, JSON
// events) streamed back, and its exit status: the output and status are
// the same either way. When no recv runs, they open the home as before.
//
// The protocol, one JSON object per line over the Unix socket:
//
//	client: {"args": ["send", "--find-timeout=15s", "bob", "/abs/f"], "json": false, "term": true, "width": 120}
//	daemon: {"o": "stdout text"} {"e": "stderr text"} … {"exit": 0}
//
// The client closing the socket (Ctrl-C) cancels the command, as Ctrl-C
// does locally.

// controlFile is the control socket's name in the home.
const controlFile = "control.sock"

// controlCommands are the commands a daemon runs for clients: those that
// need the home's Node. The others read and write the home's files, as
// the running Node expects (it picks up contacts edited by others).
var controlCommands = map[string]bool{"send": true, "resume": true, "accept": true, "refuse": true}

// refreshRequest tells a daemon that the key store's contacts changed:
// it reads them again and looks their devices up now, rather than at its
// next refresh (a minute), so that a contact just added can send at once.
const refreshRequest = "refresh-contacts"

// contactsChanged tells the running recv, if any, that contacts changed.
func (a *app) contactsChanged() {
	if a.remote {
		return
	}
	conn, err := net.Dial("unix", filepath.Join(a.home, controlFile))
	if err != nil {
		return // no daemon
	}
	defer conn.Close()
	b, _ := json.Marshal(controlRequest{Args: []string{refreshRequest}})
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(append(b, '\n')); err == nil {
		_, _ = bufio.NewReader(conn).ReadBytes('\n') // its exit frame
	}
}

// maxControlRequest bounds a request line.
const maxControlRequest = 1 << 20

type controlRequest struct {
	Args  []string `json:"args"`
	JSON  bool     `json:"json"`
	Term  bool     `json:"term"`  // the client's stderr is a terminal: draw progress bars
	Width int      `json:"width"` // its width in columns
}

type controlFrame struct {
	Out  string `json:"o,omitempty"`
	Err  string `json:"e,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// remoteExit is the status of a command a daemon ran: its output,
// errors included, was already printed.
type remoteExit struct{ code int }

func (e *remoteExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// viaDaemon runs args in the home's running recv, if there is one; it
// reports whether it did. The returned error is a *remoteExit with the
// command's status, or why the daemon could not finish it.
func (a *app) viaDaemon(args []string) (bool, error) {
	if a.remote {
		return false, nil
	}
	conn, err := net.Dial("unix", filepath.Join(a.home, controlFile))
	if err != nil {
		return false, nil // no daemon: the command opens the home itself
	}
	defer conn.Close()
	req := controlRequest{Args: args, JSON: a.opt.json}
	if isTerminal(a.stderr) {
		req.Term = true
		req.Width, _, _ = term.GetSize(int(a.stderr.(*os.File).Fd()))
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return true, fmt.Errorf("the running peerdrop (recv) did not take the command: %w", err)
	}
	a.log.Debug("running the command in the running peerdrop", "args", args)
	stop := context.AfterFunc(a.ctx, func() { conn.Close() }) // Ctrl-C: the daemon cancels it
	defer stop()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var f controlFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return true, fmt.Errorf("the running peerdrop (recv) answered garbage: %w", err)
		}
		a.outMu.Lock()
		if f.Out != "" {
			io.WriteString(a.stdout, f.Out)
		}
		if f.Err != "" {
			io.WriteString(a.stderr, f.Err)
		}
		a.outMu.Unlock()
		if f.Exit != nil {
			return true, &remoteExit{*f.Exit}
		}
	}
	if a.ctx.Err() != nil {
		return true, errInterrupted
	}
	return true, errors.New("the running peerdrop (recv) stopped before the command ended")
}

// serveControl serves the control socket for n until the returned
// closer is closed; it waits for the commands running.
func (a *app) serveControl(n *peerdrop.Node, router *eventRouter) (io.Closer, error) {
	path := filepath.Join(a.home, controlFile)
	// This process holds the home's lock: a socket left there is a
	// crashed recv's.
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	s := &controlServer{a: a, n: n, router: router, l: l, path: path, conns: make(map[net.Conn]bool)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

type controlServer struct {
	a      *app
	n      *peerdrop.Node
	router *eventRouter
	l      net.Listener
	path   string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (s *controlServer) Close() error {
	s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	os.Remove(s.path)
	return nil
}

func (s *controlServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serve runs one client's command.
func (s *controlServer) serve(c net.Conn) {
	r := bufio.NewReader(io.LimitReader(c, maxControlRequest))
	line, err := r.ReadBytes('\n')
	var req controlRequest
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	fw := &frameWriter{w: c}
	if err == nil && len(req.Args) == 1 && req.Args[0] == refreshRequest {
		s.a.log.Info("contacts changed: reading them again")
		go func() {
			ctx, cancel := context.WithTimeout(s.a.ctx, 20*time.Second)
			defer cancel()
			_ = s.n.RefreshContacts(ctx)
		}()
		code := exitOK
		_ = fw.frame(controlFrame{Exit: &code})
		return
	}
	if err != nil || len(req.Args) == 0 || !controlCommands[req.Args[0]] {
		code := exitUsage
		_ = fw.frame(controlFrame{Err: "peerdrop: the running recv runs only send, resume, accept and refuse\n", Exit: &code})
		return
	}
	ctx, cancel := context.WithCancel(s.a.ctx)
	defer cancel()
	go func() { // the client hanging up (Ctrl-C) cancels the command
		_, _ = io.Copy(io.Discard, r)
		cancel()
	}()
	sub := &app{stdin: strings.NewReader(""), stdout: fw.stream(false), stderr: fw.stream(true),
		log: s.a.log, ctx: ctx, cancel: cancel,
		remote: true, shared: s.n, router: s.router, term: &req.Term, width: req.Width, offers: s.a.offers}
	sub.in = bufio.NewReader(sub.stdin)
	root := sub.rootCommand() // its flags reset the options to their defaults: set them after
	sub.home, sub.opt, sub.name = s.a.home, s.a.opt, s.a.name
	sub.opt.json = req.JSON
	s.a.log.Info("running a command for a local client", "args", req.Args)
	root.SetArgs(req.Args)
	code := sub.exit(root.Execute())
	_ = fw.frame(controlFrame{Exit: &code})
}

// frameWriter writes frames to a control connection, one at a time.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(fr controlFrame) error {
	b, _ := json.Marshal(fr)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.w.Write(append(b, '\n'))
	return err
}

// stream is an io.Writer of stdout (or stderr) frames.
func (f *frameWriter) stream(stderr bool) io.Writer { return streamWriter{f, stderr} }

type streamWriter struct {
	f      *frameWriter
	stderr bool
}

func (s streamWriter) Write(b []byte) (int, error) {
	fr := controlFrame{Out: string(b)}
	if s.stderr {
		fr = controlFrame{Err: string(b)}
	}
	if err := s.f.frame(fr); err != nil {
		return 0, err
	}
	return len(b), nil
}

// eventRouter hands the daemon Node's events of a transfer a client's
// command runs to that command's display, and the others to recv's own.
type eventRouter struct {
	fallback func(peerdrop.Event)

	mu     sync.Mutex
	owners map[transfer.ID]func(peerdrop.Event)
}

func (r *eventRouter) route(e peerdrop.Event) {
	r.mu.Lock()
	f := r.owners[e.Transfer]
	r.mu.Unlock()
	if f != nil {
		f(e)
		return
	}
	r.fallback(e)
}

// own sends the events of transfer id to f until release.
func (r *eventRouter) own(id transfer.ID, f func(peerdrop.Event)) (release func()) {
	r.mu.Lock()
	if r.owners == nil {
		r.owners = make(map[transfer.ID]func(peerdrop.Event))
	}
	r.owners[id] = f
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.owners, id)
		r.mu.Unlock()
	}
}
