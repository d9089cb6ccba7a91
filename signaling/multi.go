package signaling

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Route is a Transport with the name its errors are reported under
// ("dht", "proxy host:443").
type Route struct {
	Name      string
	Transport Transport
}

// Reacher is implemented by Transports that know when they reach no one
// (*dht.Node: an empty routing table, as on a network that blocks UDP).
// Multi leaves such a route out while another one reaches.
type Reacher interface {
	Reachable() bool
}

// errNoRoute is the error of a get that no route answered.
var errNoRoute = errors.New("signaling: no route answered")

// getGrace is how long a Multi get waits, after a first route found the
// item, for the others to report a higher seq.
const getGrace = 30 * time.Millisecond

// Multi is a Transport over several routes: the UDP DHT and signaling
// proxies over TLS (package signaling/proxy). A put goes to every route
// and succeeds when one stored the item; the others finish in the
// background. A get races the routes and returns the highest seq any of
// them found by the time the first found it (plus getGrace). A route that
// reaches no one (Reacher) is skipped while another does. When every
// route fails, the error names each route's failure. It is a Listener when
// a route is. Close it to end its background puts.
type Multi struct {
	routes []Route
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewMulti returns a Multi over routes (at least one).
func NewMulti(routes ...Route) *Multi {
	ctx, cancel := context.WithCancel(context.Background())
	return &Multi{routes: routes, ctx: ctx, cancel: cancel}
}

// Close ends the background puts and waits for them.
func (m *Multi) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

// live returns the routes to use now: those that reach someone, or all;
// and the errors of those left out, for an operation that fails.
func (m *Multi) live() ([]Route, []routeErr) {
	var out []Route
	var skipped []routeErr
	for _, r := range m.routes {
		if re, ok := r.Transport.(Reacher); !ok || re.Reachable() {
			out = append(out, r)
		} else {
			skipped = append(skipped, routeErr{r.Name, errUnreachable})
		}
	}
	if len(out) == 0 {
		return m.routes, nil
	}
	return out, skipped
}

var errUnreachable = errors.New("reaches no node (is UDP blocked?)")

// routeErr is one route's failure.
type routeErr struct {
	name string
	err  error
}

// joinErrs makes the error of an operation that failed on every route:
// it wraps sentinel (ErrNotStored, ErrNotFound) and each route's error.
func joinErrs(sentinel error, errs []routeErr) error {
	var parts []string
	wrapped := []error{sentinel}
	for _, e := range errs {
		parts = append(parts, e.name+": "+strings.TrimPrefix(e.err.Error(), sentinel.Error()+": "))
		wrapped = append(wrapped, e.err)
	}
	return &multiError{msg: sentinel.Error() + " (" + strings.Join(parts, "; ") + ")", errs: wrapped}
}

type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

// Put implements Transport.
func (m *Multi) Put(ctx context.Context, it Item) error {
	routes, skipped := m.live()
	type result struct {
		i   int
		err error
	}
	res := make(chan result, len(routes))
	// Each put runs under the Multi's context, bounded like the caller's,
	// so that the routes still running when one succeeded finish.
	deadline, hasDeadline := ctx.Deadline()
	for i, r := range routes {
		pctx, cancel := context.WithCancel(m.ctx)
		if hasDeadline {
			pctx, cancel = context.WithDeadline(m.ctx, deadline)
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer cancel()
			res <- result{i, r.Transport.Put(pctx, it)}
		}()
	}
	var errs []routeErr
	for range routes {
		select {
		case r := <-res:
			if r.err == nil {
				return nil
			}
			errs = append(errs, routeErr{routes[r.i].Name, r.err})
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return joinErrs(ErrNotStored, append(skipped, errs...))
}

// Get implements Transport.
func (m *Multi) Get(ctx context.Context, key [32]byte, salt []byte) (Item, error) {
	routes, skipped := m.live()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i   int
		it  Item
		err error
	}
	res := make(chan result, len(routes))
	for i, r := range routes {
		go func() {
			it, err := r.Transport.Get(ctx, key, salt)
			res <- result{i, it, err}
		}()
	}
	var (
		best  Item
		found bool
		errs  []routeErr
		grace <-chan time.Time
	)
	for pending := len(routes); pending > 0; pending-- {
		select {
		case r := <-res:
			switch {
			case r.err == nil:
				if !found || r.it.Seq > best.Seq {
					best, found = r.it, true
				}
				if grace == nil {
					t := time.NewTimer(getGrace)
					defer t.Stop()
					grace = t.C
				}
			case errors.Is(r.err, ErrNotFound):
			default:
				errs = append(errs, routeErr{routes[r.i].Name, r.err})
			}
		case <-grace:
			return best, nil
		case <-ctx.Done():
			if found {
				return best, nil
			}
			return Item{}, ctx.Err()
		}
	}
	if found {
		return best, nil
	}
	if len(errs) == len(routes) {
		return Item{}, joinErrs(errNoRoute, append(skipped, errs...))
	}
	return Item{}, ErrNotFound
}

// Subscribe implements Listener: a subscription at every route that can
// listen, or nil if none can.
func (m *Multi) Subscribe() Subscription {
	var subs []Subscription
	for _, r := range m.routes {
		if l, ok := r.Transport.(Listener); ok {
			if s := l.Subscribe(); s != nil {
				subs = append(subs, s)
			}
		}
	}
	if len(subs) == 0 {
		return nil
	}
	s := &multiSub{subs: subs, updates: make(chan Item, 64), done: make(chan struct{}), seen: make(map[[20]byte]int64)}
	for _, sub := range subs {
		s.wg.Add(1)
		go s.forward(sub)
	}
	return s
}

// multiSub merges the routes' subscriptions; an item notified by several
// routes is delivered once.
type multiSub struct {
	subs    []Subscription
	updates chan Item
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	mu   sync.Mutex
	seen map[[20]byte]int64 // highest seq delivered per target
}

func (s *multiSub) forward(sub Subscription) {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case it := <-sub.Updates():
			t := it.Target()
			s.mu.Lock()
			seq, ok := s.seen[t]
			fresh := !ok || it.Seq > seq
			if fresh {
				s.seen[t] = it.Seq
			}
			s.mu.Unlock()
			if !fresh {
				continue
			}
			select {
			case s.updates <- it:
			default: // a missed notice: the target is still polled slowly
			}
		}
	}
}

func (s *multiSub) Set(targets [][20]byte) {
	s.mu.Lock()
	keep := make(map[[20]byte]int64, len(targets))
	for _, t := range targets {
		if seq, ok := s.seen[t]; ok {
			keep[t] = seq
		}
	}
	s.seen = keep
	s.mu.Unlock()
	for _, sub := range s.subs {
		sub.Set(targets)
	}
}

func (s *multiSub) Listening(target [20]byte) bool {
	for _, sub := range s.subs {
		if sub.Listening(target) {
			return true
		}
	}
	return false
}

func (s *multiSub) Updates() <-chan Item { return s.updates }

func (s *multiSub) Close() {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		for _, sub := range s.subs {
			sub.Close()
		}
	})
}

// String names the routes.
func (m *Multi) String() string {
	var names []string
	for _, r := range m.routes {
		names = append(names, r.Name)
	}
	return fmt.Sprintf("multi(%s)", strings.Join(names, ", "))
}
