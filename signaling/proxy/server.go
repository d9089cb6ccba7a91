package proxy

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// ServerStats counts a Server's work and what it refused.
type ServerStats struct {
	Puts, PutsFailed, Gets, Found int64
	BadRequests                   int64 // malformed or forged items, bad targets
	RateLimited                   int64 // over a client's or a target's rate
	ConnsRefused                  int64 // over MaxConns or MaxConnsPerIP
	StreamsRefused                int64 // over MaxStreams, per IP or MaxListened
	Streams                       int   // open now
	Listened                      int   // distinct targets listened now
	Notified                      int64 // items sent on streams
	NotifyDropped                 int64 // items a slow stream had no room for
	SlowClosed                    int64 // streams closed: the client did not read
}

// Server serves signaling over HTTPS (see the package documentation).
type Server struct {
	cfg  ServerConfig
	http *http.Server
	hub  *hub

	clients *limiters[netip.Addr]
	targets *limiters[[20]byte]
	streams counts

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	puts, putsFailed, gets, found, bad, limited atomic.Int64
	connsRefused, streamsRefused, slowClosed    atomic.Int64
}

// NewServer returns a Server; call Serve to serve a listener.
func NewServer(c *ServerConfig) (*Server, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg,
		clients: newLimiters[netip.Addr](cfg.RequestRate, cfg.RequestBurst, 1<<16),
		targets: newLimiters[[20]byte](cfg.TargetPutRate, cfg.TargetPutBurst, 1<<16)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hub = newHub(cfg.Backend, cfg.MaxListened)
	if s.hub.sub != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.hub.run(s.ctx)
		}()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/{$}", s.handleInfo)
	mux.HandleFunc("POST /v1/put", s.handlePut)
	mux.HandleFunc("GET /v1/get", s.handleGet)
	mux.HandleFunc("POST /v1/listen", s.handleListen)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	s.http = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cfg.Certificate}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout, // also bounds the TLS handshake; listen streams lift it
		WriteTimeout:      0,               // streams are long; each write has its own deadline
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		Protocols:         &protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 64, MaxReadFrameSize: 16 << 10},
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	return s, nil
}

// Serve accepts connections on l (TCP) until Close; it returns
// http.ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	ll := &limitListener{Listener: l, perIP: s.cfg.MaxConnsPerIP, max: s.cfg.MaxConns, refused: &s.connsRefused}
	return s.http.ServeTLS(ll, "", "")
}

// Close stops the Server: its listeners, connections and streams.
func (s *Server) Close() error {
	s.cancel()
	err := s.http.Close()
	s.wg.Wait()
	s.hub.close()
	return err
}

// Stats returns the Server's counters.
func (s *Server) Stats() ServerStats {
	st := ServerStats{Puts: s.puts.Load(), PutsFailed: s.putsFailed.Load(), Gets: s.gets.Load(), Found: s.found.Load(),
		BadRequests: s.bad.Load(), RateLimited: s.limited.Load(), ConnsRefused: s.connsRefused.Load(),
		StreamsRefused: s.streamsRefused.Load(), Streams: s.streams.total(), SlowClosed: s.slowClosed.Load()}
	st.Listened, st.Notified, st.NotifyDropped = s.hub.stats()
	return st
}

// client returns the requester's key, and false (with 429 written) when
// it is over its rate.
func (s *Server) client(w http.ResponseWriter, r *http.Request) (netip.Addr, bool) {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	key := clientKey(ap)
	if !s.clients.allow(key) {
		s.limited.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "over the request rate", http.StatusTooManyRequests)
		return key, false
	}
	return key, true
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.client(w, r); !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"proxy":"peerdrop","version":1}`+"\n")
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.client(w, r); !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.bad.Add(1)
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	it, err := decodeItem(body)
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.targets.allow(it.Target()) {
		s.limited.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "over the put rate of this target", http.StatusTooManyRequests)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.OpTimeout)
	defer cancel()
	if err := s.cfg.Backend.Put(ctx, it); err != nil {
		s.putsFailed.Add(1)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	s.puts.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.client(w, r); !ok {
		return
	}
	q := r.URL.Query()
	k, err1 := hex.DecodeString(q.Get("k"))
	salt, err2 := hex.DecodeString(q.Get("salt"))
	if err1 != nil || err2 != nil || len(k) != 32 || len(salt) > 64 {
		s.bad.Add(1)
		http.Error(w, "want k (32 bytes) and salt (at most 64) in hex", http.StatusBadRequest)
		return
	}
	s.gets.Add(1)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.OpTimeout)
	defer cancel()
	it, err := s.cfg.Backend.Get(ctx, [32]byte(k), salt)
	switch {
	case errors.Is(err, signaling.ErrNotFound):
		http.Error(w, "not found", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	s.found.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(toWire(it))
}

func (s *Server) handleListen(w http.ResponseWriter, r *http.Request) {
	key, ok := s.client(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxListenBody))
	var req listenRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	var targets [][20]byte
	if err == nil {
		targets, err = decodeTargets(req.Targets, s.cfg.MaxTargets)
	}
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.hub.sub == nil {
		http.Error(w, "this proxy cannot listen: poll with get", http.StatusNotImplemented)
		return
	}
	if !s.streams.take(key, s.cfg.MaxStreamsPerIP, s.cfg.MaxStreams) {
		s.streamsRefused.Add(1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many listen streams", http.StatusServiceUnavailable)
		return
	}
	defer s.streams.release(key)
	st := s.hub.open(targets)
	if st == nil {
		s.streamsRefused.Add(1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many listened targets", http.StatusServiceUnavailable)
		return
	}
	defer s.hub.closeStream(st)

	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the request is read; the stream lasts
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	write := func(v any) bool {
		// The deadline is lifted after the write: on HTTP/2 a deadline
		// that passes resets the stream even when it is idle.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if enc.Encode(v) != nil || rc.Flush() != nil {
			s.slowClosed.Add(1)
			return false
		}
		_ = rc.SetWriteDeadline(time.Time{})
		return true
	}
	var listening []string
	status := func() bool {
		now := encodeTargets(s.hub.listening(targets))
		if listening != nil && slices.Equal(now, listening) {
			return true
		}
		listening = now
		return write(streamLine{Listening: &now})
	}
	if !status() {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	idle := time.NewTimer(s.cfg.KeepAlive)
	defer idle.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case it := <-st.ch:
			w := toWire(it)
			if !write(streamLine{Item: &w}) {
				return
			}
			idle.Reset(s.cfg.KeepAlive)
		case <-tick.C:
			if !status() {
				return
			}
		case <-idle.C:
			if !write(struct{}{}) {
				return
			}
			idle.Reset(s.cfg.KeepAlive)
		}
	}
}

// hub shares one Backend subscription among the listen streams.
type hub struct {
	sub signaling.Subscription // nil if the Backend cannot listen
	max int

	mu       sync.Mutex
	byTarget map[[20]byte]map[*stream]bool
	notified int64
	dropped  int64
}

// stream is one listen stream's delivery queue.
type stream struct {
	targets [][20]byte
	ch      chan signaling.Item
}

func newHub(b signaling.Transport, max int) *hub {
	h := &hub{max: max, byTarget: make(map[[20]byte]map[*stream]bool)}
	if l, ok := b.(signaling.Listener); ok {
		h.sub = l.Subscribe()
	}
	return h
}

// open adds a stream for targets, or returns nil past the hub's bound.
func (h *hub) open(targets [][20]byte) *stream {
	st := &stream{targets: targets, ch: make(chan signaling.Item, 32)}
	h.mu.Lock()
	added := 0
	for _, t := range targets {
		if h.byTarget[t] == nil {
			added++
		}
	}
	if len(h.byTarget)+added > h.max {
		h.mu.Unlock()
		return nil
	}
	for _, t := range targets {
		if h.byTarget[t] == nil {
			h.byTarget[t] = make(map[*stream]bool)
		}
		h.byTarget[t][st] = true
	}
	all := h.allLocked(added > 0)
	h.mu.Unlock()
	if all != nil {
		h.sub.Set(all)
	}
	return st
}

func (h *hub) closeStream(st *stream) {
	h.mu.Lock()
	removed := false
	for _, t := range st.targets {
		delete(h.byTarget[t], st)
		if len(h.byTarget[t]) == 0 {
			delete(h.byTarget, t)
			removed = true
		}
	}
	all := h.allLocked(removed)
	h.mu.Unlock()
	if all != nil {
		h.sub.Set(all)
	}
}

// allLocked returns every listened target if changed, else nil.
func (h *hub) allLocked(changed bool) [][20]byte {
	if !changed {
		return nil
	}
	all := make([][20]byte, 0, len(h.byTarget))
	for t := range h.byTarget {
		all = append(all, t)
	}
	return all
}

// listening returns those of targets whose puts are notified.
func (h *hub) listening(targets [][20]byte) [][20]byte {
	out := [][20]byte{}
	for _, t := range targets {
		if h.sub.Listening(t) {
			out = append(out, t)
		}
	}
	return out
}

// run hands the Backend's updates to the streams of their targets.
func (h *hub) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-h.sub.Updates():
			h.mu.Lock()
			for st := range h.byTarget[it.Target()] {
				select {
				case st.ch <- it:
					h.notified++
				default:
					h.dropped++
				}
			}
			h.mu.Unlock()
		}
	}
}

func (h *hub) stats() (listened int, notified, dropped int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byTarget), h.notified, h.dropped
}

func (h *hub) close() {
	if h.sub != nil {
		h.sub.Close()
	}
}

// retryAfter reads a Retry-After in seconds, bounded.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 60)) * time.Second
}
