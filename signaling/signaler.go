package signaling

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// Peer is a device this one exchanges messages with.
type Peer struct {
	Account identity.AccountID
	Device  identity.DeviceID
	Sealing *ecdh.PublicKey
}

// Stats counts what a Signaler did.
type Stats struct {
	Dropped                         map[Reason]int64
	RequestsSent, RequestsReceived  int64
	AnswersSent, AnswersReceived    int64
	Gets, Puts, GetErrors, PutFails int64
}

// Signaler sends sealed requests and answers through mailboxes and polls
// the mailboxes of watched peers for requests to this device.
type Signaler struct {
	cfg       Config
	me        *identity.Device
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	incoming  chan *Incoming
	sub       Subscription  // nil: the Transport is only polled
	rewatch   chan struct{} // the watched set changed (for listenLoop)
	flushKick chan struct{} // wakes flushLoop

	mu          sync.Mutex
	dirty       map[*outbox]bool // outboxes whose slots flushLoop is to write
	peers       map[identity.DeviceID]*peerState
	requestsOut map[identity.DeviceID]*outbox // requests to each peer
	answersOut  map[identity.DeviceID]*outbox // answers to each peer
	waiters     map[MessageID]waiter          // requests waiting for an answer
	answered    map[MessageID]answered        // answers sent, until their TTL
	seen        map[MessageID]time.Time
	lastSeq     int64

	dropped                            [numReasons]atomic.Int64
	reqSent, reqRecv, ansSent, ansRecv atomic.Int64
	gets, puts, getErrs, putFails      atomic.Int64
}

type peerState struct {
	Peer
	in, out        ed25519.PrivateKey // mailboxes peer→me and me→peer
	q0             [20]byte           // target of the first request slot from the peer
	watched        bool
	listened       bool // next was set by a listened interval
	next           time.Time
	activeUntil    time.Time
	polling        bool
	answerRead     sync.Mutex // one read of the peer's answer slots at a time
	lastAnswerRead time.Time  // guarded by answerRead
}

// New starts a Signaler. Close stops it. Device and Transport are required
// (a nil cfg is an error).
func New(cfg *Config) (*Signaler, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Signaler{
		cfg: c, me: c.Device,
		incoming:    make(chan *Incoming, c.Backlog),
		rewatch:     make(chan struct{}, 1),
		peers:       make(map[identity.DeviceID]*peerState),
		requestsOut: make(map[identity.DeviceID]*outbox),
		answersOut:  make(map[identity.DeviceID]*outbox),
		waiters:     make(map[MessageID]waiter),
		answered:    make(map[MessageID]answered),
		seen:        make(map[MessageID]time.Time),
		dirty:       make(map[*outbox]bool),
		flushKick:   make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(3)
	go s.pollLoop()
	go s.republishLoop()
	go s.flushLoop()
	if l, ok := c.Transport.(Listener); ok {
		if s.sub = l.Subscribe(); s.sub != nil {
			s.wg.Add(1)
			go s.listenLoop()
		}
	}
	return s, nil
}

// Close stops polling and republishing and waits for every goroutine.
func (s *Signaler) Close() error {
	s.cancel()
	s.wg.Wait()
	if s.sub != nil {
		s.sub.Close()
	}
	return nil
}

// SetPollBudget changes Config.PollBudget while running: mobile apps lower
// it when they go to the background (fewer DHT queries, less battery,
// slower delivery) and raise it again in the foreground, which takes
// effect at once. Values ≤ 0 restore the default.
func (s *Signaler) SetPollBudget(budget float64) {
	if budget <= 0 {
		budget = 10
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.PollBudget = budget
	n := 0
	for _, ps := range s.peers {
		if ps.watched {
			n++
		}
	}
	idle := time.Duration(float64(n) / budget * float64(time.Second))
	idle = min(max(idle, s.cfg.MinPoll), s.cfg.MaxPoll)
	latest := s.cfg.Now().Add(idle)
	for _, ps := range s.peers {
		if ps.next.After(latest) {
			ps.next = latest
		}
	}
}

// Incoming delivers requests to this device that passed every check.
func (s *Signaler) Incoming() <-chan *Incoming { return s.incoming }

// Watch starts polling a peer's mailbox for requests (a device of a
// contact). Watching again updates the peer's sealing key.
func (s *Signaler) Watch(p Peer) error {
	ps, err := s.peer(p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	was := ps.watched
	ps.watched = true
	s.mu.Unlock()
	if !was {
		s.cfg.Logger.Debug("watching a device", "device", p.Device.Short())
	}
	s.watchChanged()
	return nil
}

func (s *Signaler) watchChanged() {
	select {
	case s.rewatch <- struct{}{}:
	default:
	}
}

// Unwatch stops polling a peer.
func (s *Signaler) Unwatch(dev identity.DeviceID) {
	s.mu.Lock()
	if ps := s.peers[dev]; ps != nil {
		ps.watched = false
	}
	s.mu.Unlock()
	s.watchChanged()
}

func (s *Signaler) peer(p Peer) (*peerState, error) {
	if p.Sealing == nil {
		return nil, errors.New("signaling: peer without a sealing key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.peers[p.Device]; ps != nil && ps.Sealing.Equal(p.Sealing) && ps.Account == p.Account {
		return ps, nil
	}
	in, err := mailboxKey(s.me, p.Sealing, p.Device, s.me.ID())
	if err != nil {
		return nil, err
	}
	out, err := mailboxKey(s.me, p.Sealing, s.me.ID(), p.Device)
	if err != nil {
		return nil, err
	}
	ps := &peerState{Peer: p, in: in, out: out}
	ps.q0 = Target([32]byte(in.Public().(ed25519.PublicKey)), requestSalts[0])
	if old := s.peers[p.Device]; old != nil {
		ps.watched = old.watched
	}
	s.peers[p.Device] = ps
	return ps, nil
}

// Stats returns the counters.
func (s *Signaler) Stats() Stats {
	st := Stats{Dropped: make(map[Reason]int64)}
	for r := Reason(1); r < numReasons; r++ {
		if n := s.dropped[r].Load(); n > 0 {
			st.Dropped[r] = n
		}
	}
	st.RequestsSent, st.RequestsReceived = s.reqSent.Load(), s.reqRecv.Load()
	st.AnswersSent, st.AnswersReceived = s.ansSent.Load(), s.ansRecv.Load()
	st.Gets, st.Puts, st.GetErrors, st.PutFails = s.gets.Load(), s.puts.Load(), s.getErrs.Load(), s.putFails.Load()
	return st
}

func (s *Signaler) count(err error) {
	var de *DropError
	if errors.As(err, &de) {
		s.dropped[de.Reason].Add(1)
		s.cfg.Logger.Debug("dropped a message", "reason", de.Reason, "detail", de.Detail)
	}
}

// nextSeq returns a BEP 44 seq above every one this process used: the
// time in microseconds.
func (s *Signaler) nextSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := max(s.cfg.Now().UnixMicro(), s.lastSeq+1)
	s.lastSeq = seq
	return seq
}

func (s *Signaler) put(ctx context.Context, it Item) error {
	s.puts.Add(1)
	err := s.cfg.Transport.Put(ctx, it)
	if err != nil {
		s.putFails.Add(1)
	}
	return err
}

func (s *Signaler) get(ctx context.Context, key ed25519.PrivateKey, salt []byte) (Item, error) {
	var k [32]byte
	copy(k[:], key.Public().(ed25519.PublicKey))
	s.gets.Add(1)
	it, err := s.cfg.Transport.Get(ctx, k, salt)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.getErrs.Add(1)
	}
	if err == nil && (!it.Verify() || it.Key != k) {
		return Item{}, ErrNotFound // a transport bug or a lie: ignore it
	}
	return it, err
}

// Request sends payload to the peer as a sealed request and waits for the
// answer until ctx ends or RequestTTL passes. The request stays in a slot
// of the mailbox to the peer (republished meanwhile) until it is answered.
func (s *Signaler) Request(ctx context.Context, to Peer, payload []byte) (*Message, error) {
	ps, err := s.peer(to)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	id := newMessageID()
	sealed, err := seal(s.me, to.Device, to.Sealing, KindRequest, id, MessageID{}, now, payload)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTTL)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	answer := make(chan *Message, 1)
	s.mu.Lock()
	s.waiters[id] = waiter{from: to.Device, ch: answer}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, id)
		s.mu.Unlock()
	}()

	ob := s.outbox(ps, false)
	ob.add(id, sealed, now.Add(s.cfg.RequestTTL))
	// The request leaves its slot once answered (or given up); the slot
	// is written in the background, so the answer is not held back by a
	// put (flushLoop).
	defer func() {
		ob.remove(id)
		s.flush(ob)
	}()
	// A put can fail for a moment (a lost packet, a node going away):
	// try three times before giving up.
	for try := 1; ; try++ {
		err := ob.sync(ctx, s, 0)
		if err == nil || ob.written(id) {
			break
		}
		if try == 3 || ctx.Err() != nil {
			return nil, fmt.Errorf("signaling: request to %s: %w", to.Device.Short(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * 100 * time.Millisecond):
		}
	}
	s.reqSent.Add(1)
	s.cfg.Logger.Debug("request put", "to", to.Device.Short(), "id", fmt.Sprintf("%x", id[:4]), "took", s.cfg.Now().Sub(now))

	poll := time.NewTimer(s.cfg.AnswerPoll)
	defer poll.Stop()
	for {
		select {
		case m := <-answer:
			s.ansRecv.Add(1)
			return m, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("signaling: no answer from %s: %w", to.Device.Short(), ctx.Err())
		case <-poll.C:
			s.pollAnswers(ctx, ps)
			every := time.Duration(float64(s.waitingPeers()) / s.cfg.AnswerBudget * float64(time.Second))
			poll.Reset(max(every, s.cfg.AnswerPoll))
		}
	}
}

// waiter is a request waiting for its answer.
type waiter struct {
	from identity.DeviceID
	ch   chan *Message // buffered: one answer
}

// Incoming is a verified request waiting for the application.
type Incoming struct {
	Msg  *Message
	From Peer
	s    *Signaler
}

// Answer seals payload as the answer to the request and stores it in an
// answer slot of the mailbox to the requester, where it stays
// (republished) until the requester has it or the request's TTL passes.
// With four answers to that device pending, it waits for a free slot.
func (in *Incoming) Answer(ctx context.Context, payload []byte) error {
	s := in.s
	ps, err := s.peer(in.From)
	if err != nil {
		return err
	}
	sealed, err := seal(s.me, in.From.Device, in.From.Sealing, KindAnswer, newMessageID(), in.Msg.ID, s.cfg.Now(), payload)
	if err != nil {
		return err
	}
	until := in.Msg.Time.Add(s.cfg.RequestTTL)
	s.mu.Lock()
	s.answered[in.Msg.ID] = answered{from: in.From.Device, sealed: sealed, until: until}
	s.mu.Unlock()
	ob := s.outbox(ps, true)
	ob.add(in.Msg.ID, sealed, until)
	if err := ob.sync(ctx, s, 0); err != nil && !ob.written(in.Msg.ID) {
		return fmt.Errorf("signaling: answer to %s: %w", in.From.Device.Short(), err)
	}
	s.ansSent.Add(1)
	return nil
}

// answered is an answer this device sent, kept until its request's TTL so
// that it can be put back if its slot was freed too early.
type answered struct {
	from   identity.DeviceID
	sealed []byte
	until  time.Time
}
