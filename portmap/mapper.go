package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/jackpal/gateway"
)

// Mapper maps the ports of a device's listeners at its router. It
// implements ice.PortMapper. All methods are safe for concurrent use.
type Mapper struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the maintain loop

	mu          sync.Mutex
	r           router // nil until discovered
	discovering bool
	gen         int                       // discovery generation (Rediscover)
	maps        map[uint16]mapping        // by local port
	wanted      map[uint16]netip.AddrPort // asked for before a router was known, or refused
	lastErr     error
	quietUntil  time.Time // after a refusal, MapPort answers at once with lastErr until then
}

// refusedQuiet is how long MapPort answers with the last error, without
// asking, after the router refused a mapping or did not answer.
const refusedQuiet = 30 * time.Second

// mapping is one port forwarded by the router. Mappings are kept by local
// port: a listener on 0.0.0.0:P and its host candidate 10.0.0.2:P share
// one.
type mapping struct {
	r        router
	local    netip.AddrPort
	external netip.AddrPort
	expires  time.Time
	lease    time.Duration
}

// New returns a Mapper and starts discovering the router (cfg nil:
// defaults).
func New(cfg *Config) *Mapper {
	c := cfg.withDefaults()
	m := &Mapper{cfg: c, log: c.Logger, kick: make(chan struct{}, 1),
		maps: make(map[uint16]mapping), wanted: make(map[uint16]netip.AddrPort)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.maintain()
	m.Rediscover()
	return m
}

// Status says which protocol maps ports ("upnp", "nat-pmp"; "" while
// none), and the last error of discovery or mapping.
func (m *Mapper) Status() (proto string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.r != nil {
		proto = m.r.proto()
	}
	return proto, m.lastErr
}

// MapPort implements ice.PortMapper: the public address the router
// forwards to local. It never waits for discovery (see the package doc).
func (m *Mapper) MapPort(ctx context.Context, local netip.AddrPort) (netip.AddrPort, error) {
	if !local.Addr().Unmap().Is4() {
		return netip.AddrPort{}, ErrFamily
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return netip.AddrPort{}, ErrClosed
	}
	if mp, ok := m.maps[local.Port()]; ok && time.Until(mp.expires) > mp.lease/4 {
		m.mu.Unlock()
		return mp.external, nil
	}
	r, discovering := m.r, m.discovering
	if r != nil && time.Now().Before(m.quietUntil) {
		// The router refused or did not answer lately: no connect waits
		// for it again; maintain tries once the quiet time is over.
		m.wanted[local.Port()] = local
		err := m.lastErr
		m.mu.Unlock()
		return netip.AddrPort{}, err
	}
	if r == nil {
		m.wanted[local.Port()] = local
		m.mu.Unlock()
		if discovering {
			return netip.AddrPort{}, ErrDiscovering
		}
		return netip.AddrPort{}, ErrNoRouter
	}
	m.mu.Unlock()
	return m.add(ctx, r, local)
}

// add asks r for a mapping of local and records it.
func (m *Mapper) add(ctx context.Context, r router, local netip.AddrPort) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	var want uint16
	m.mu.Lock()
	if mp, ok := m.maps[local.Port()]; ok && mp.r == r {
		want = mp.external.Port() // renew the same port
	}
	m.mu.Unlock()
	ext, lease, err := r.add(ctx, local, want, m.cfg.Lease)
	m.mu.Lock()
	if err != nil {
		m.lastErr = err
		m.quietUntil = time.Now().Add(refusedQuiet)
		m.mu.Unlock()
		m.log.Debug("port mapping failed", "local", local, "proto", r.proto(), "err", err)
		return netip.AddrPort{}, err
	}
	if m.r != r || m.ctx.Err() != nil {
		// Rediscovered or closed meanwhile: undo it.
		m.mu.Unlock()
		dctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
		defer cancel()
		_ = r.del(dctx, local, ext.Port())
		return netip.AddrPort{}, ErrClosed
	}
	m.maps[local.Port()] = mapping{r: r, local: local, external: ext, expires: time.Now().Add(lease), lease: lease}
	delete(m.wanted, local.Port())
	m.mu.Unlock()
	m.log.Debug("port mapped", "local", local, "public", ext, "proto", r.proto(), "lease", lease)
	return ext, nil
}

// Rediscover forgets the router and its mappings (deleting them if it can)
// and looks for a router again: call it when the network changed.
func (m *Mapper) Rediscover() {
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	old := m.maps
	m.maps = make(map[uint16]mapping)
	for port, mp := range old {
		m.wanted[port] = mp.local
	}
	m.r, m.discovering = nil, true
	m.gen++
	gen := m.gen
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		m.deleteAll(old)
		m.discover(gen)
	}()
}

// discover finds a router by NAT-PMP and UPnP at once. The first found is
// used at once and kept (NAT-PMP answers in milliseconds, an SSDP search
// takes about 2 s).
func (m *Mapper) discover(gen int) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout+2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	found := func(r router, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		m.use(gen, r)
	}
	if !m.cfg.NoNATPMP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw := m.cfg.Gateway
			if !gw.IsValid() {
				ip, err := gateway.DiscoverGateway()
				if err != nil {
					found(nil, fmt.Errorf("nat-pmp: no default gateway: %w", err))
					return
				}
				gw, _ = netip.AddrFromSlice(ip)
				gw = gw.Unmap()
			}
			r, err := findNATPMP(ctx, gw, m.cfg.Timeout)
			if err != nil {
				found(nil, err)
				return
			}
			found(r, nil)
		}()
	}
	if !m.cfg.NoUPnP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := findUPnP(ctx, m.cfg.UPnPLocation, m.cfg.Description)
			if err != nil {
				found(nil, err)
				return
			}
			found(r, nil)
		}()
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	m.discovering = false
	if m.r == nil {
		m.lastErr = fmt.Errorf("%w (%w)", ErrNoRouter, errors.Join(errs...))
		m.log.Debug("no port-mapping router", "err", m.lastErr)
	}
}

// use makes r the router, unless discovery started again meanwhile or
// another protocol found it first, and maps the ports asked for.
func (m *Mapper) use(gen int, r router) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen || m.r != nil {
		return
	}
	m.r = r
	m.log.Debug("port-mapping router found", "proto", r.proto())
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// maintain maps the ports asked for before a router was known and renews
// mappings at half their lease.
func (m *Mapper) maintain() {
	defer m.wg.Done()
	t := time.NewTicker(min(m.cfg.Lease/8, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		m.mu.Lock()
		r := m.r
		var todo []netip.AddrPort
		if r != nil && !time.Now().Before(m.quietUntil) {
			for _, local := range m.wanted {
				todo = append(todo, local)
			}
			for _, mp := range m.maps {
				if time.Until(mp.expires) < mp.lease/2 {
					todo = append(todo, mp.local)
				}
			}
		}
		m.mu.Unlock()
		for _, local := range todo {
			_, _ = m.add(m.ctx, r, local)
		}
	}
}

// deleteAll removes mappings at their router, each within Timeout.
func (m *Mapper) deleteAll(maps map[uint16]mapping) {
	for _, mp := range maps {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
		if err := mp.r.del(ctx, mp.local, mp.external.Port()); err != nil {
			m.log.Debug("deleting a port mapping failed", "local", mp.local, "err", err)
		}
		cancel()
	}
}

// Close stops renewing, deletes every mapping and waits for the Mapper's
// goroutines. It is idempotent.
func (m *Mapper) Close() error {
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return nil
	}
	m.cancel()
	maps := m.maps
	m.maps = make(map[uint16]mapping)
	m.mu.Unlock()
	m.wg.Wait()
	m.deleteAll(maps)
	return nil
}
