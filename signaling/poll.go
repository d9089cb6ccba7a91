package signaling

// Reading: the poll loop that reads each watched peer's request slots
// within the poll budget, the answer reads for pending requests, the
// republishing of pending messages, and the checks each received message
// passes (see doc.go for the flow).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// pollAnswers reads the peer's answer slots ("r0", then the next while the
// previous held an answer) and hands each answer to the request waiting
// for it. Requests waiting on the same peer share one read at a time.
func (s *Signaler) pollAnswers(ctx context.Context, ps *peerState) {
	if !ps.answerRead.TryLock() {
		return
	}
	defer ps.answerRead.Unlock()
	if now := s.cfg.Now(); now.Sub(ps.lastAnswerRead) < s.cfg.AnswerPoll/2 {
		return // another request waiting on this peer just read
	} else {
		ps.lastAnswerRead = now
	}
	for i := 0; i < slots; i++ {
		it, err := s.get(ctx, ps.in, answerSalts[i])
		if err != nil || len(it.Value) == 0 {
			return
		}
		m, err := open(s.me, it.Value, s.cfg.Now(), s.cfg.Window)
		switch {
		case err != nil:
			s.count(err)
			continue
		case m.Kind != KindAnswer:
			s.count(drop(ReasonGarbled, "a request in an answer slot"))
			continue
		case m.From.Device != ps.Device || m.From.Account != ps.Account:
			s.count(drop(ReasonWrongSender, "answer from %s in the mailbox of %s", m.From.Device.Short(), ps.Device.Short()))
			continue
		}
		s.mu.Lock()
		w, ok := s.waiters[m.ReplyTo]
		if ok && w.from == ps.Device {
			delete(s.waiters, m.ReplyTo)
			w.ch <- m
		}
		s.mu.Unlock()
		// An answer nobody waits for is to a request that already ended
		// (answered, canceled or expired): it leaves its slot soon.
	}
}

// waitingPeers is the number of peers that requests wait on: their
// answer slots are read AnswerBudget times a second in all.
func (s *Signaler) waitingPeers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	peers := make(map[identity.DeviceID]bool)
	for _, w := range s.waiters {
		peers[w.from] = true
	}
	return len(peers)
}

// republishLoop puts pending requests and answers again every Republish
// and drops the expired ones.
func (s *Signaler) republishLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Republish)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var all []*outbox
		for _, ob := range s.requestsOut {
			all = append(all, ob)
		}
		for _, ob := range s.answersOut {
			all = append(all, ob)
		}
		s.mu.Unlock()
		for _, ob := range all {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Republish)
			ob.prune(s.cfg.Now(), nil, time.Time{})
			_ = ob.sync(ctx, s, s.cfg.Republish)
			cancel()
		}
	}
}

// flush has flushLoop write ob's slots soon.
func (s *Signaler) flush(ob *outbox) {
	s.mu.Lock()
	s.dirty[ob] = true
	s.mu.Unlock()
	select {
	case s.flushKick <- struct{}{}:
	default:
	}
}

// flushLoop writes the slots of outboxes that changed without a write of
// their own (a request removed once answered), so that the requester's
// slot read soon no longer lists it and the peer frees its answer slot.
func (s *Signaler) flushLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.flushKick:
		}
		s.mu.Lock()
		dirty := s.dirty
		s.dirty = make(map[*outbox]bool)
		s.mu.Unlock()
		for ob := range dirty {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			_ = ob.sync(ctx, s, 0)
			cancel()
		}
	}
}

// pollLoop polls watched peers when they are due, a few at a time.
func (s *Signaler) pollLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(max(s.cfg.MinPoll/4, 10*time.Millisecond))
	defer tick.Stop()
	sem := make(chan struct{}, 8)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		now := s.cfg.Now()
		s.mu.Lock()
		n := 0
		for _, ps := range s.peers {
			if ps.watched {
				n++
			}
		}
		idle := time.Duration(float64(n) / s.cfg.PollBudget * float64(time.Second))
		idle = min(max(idle, s.cfg.MinPoll), s.cfg.MaxPoll)
		var due []*peerState
		for _, ps := range s.peers {
			if !ps.watched || ps.polling {
				continue
			}
			// A peer scheduled for the listened interval is due at once
			// when its subscription lapses.
			if now.Before(ps.next) && (!ps.listened || s.sub.Listening(ps.q0)) {
				continue
			}
			ps.polling = true
			ps.listened = false
			switch {
			case now.Before(ps.activeUntil):
				ps.next = now.Add(s.cfg.MinPoll)
			case s.sub != nil && s.sub.Listening(ps.q0):
				ps.next, ps.listened = now.Add(s.cfg.ListenedPoll), true
			default:
				ps.next = now.Add(idle)
			}
			due = append(due, ps)
		}
		s.mu.Unlock()
		for _, ps := range due {
			select {
			case sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-sem }()
				s.pollPeer(ps)
				s.mu.Lock()
				ps.polling = false
				s.mu.Unlock()
			}()
		}
	}
}

// pollPeer reads the peer's request slots: "q0", then the next while the
// previous held a message. A complete read also tells which of this
// device's answers to the peer are no longer needed.
func (s *Signaler) pollPeer(ps *peerState) {
	ctx, cancel := context.WithTimeout(s.ctx, max(s.cfg.MinPoll, time.Second))
	defer cancel()
	start := s.cfg.Now()
	live := make(map[MessageID]bool)
	complete, readd := false, false
	for i := 0; i < slots; i++ {
		it, err := s.get(ctx, ps.in, requestSalts[i])
		if errors.Is(err, ErrNotFound) || err == nil && len(it.Value) == 0 {
			complete = true
			break
		}
		if err != nil {
			break
		}
		id, ok, answered := s.receive(ps, it.Value)
		if ok {
			live[id] = true
		}
		readd = readd || answered
		complete = i == slots-1
	}
	s.mu.Lock()
	ob := s.answersOut[ps.Device]
	s.mu.Unlock()
	if ob == nil {
		return
	}
	if !complete {
		live = nil
	}
	if ob.prune(s.cfg.Now(), live, start) || readd {
		_ = ob.sync(ctx, s, 0)
	}
}

// receive opens a request from the peer's slot and delivers it unless it
// was seen before. It returns the request's ID if it is a valid request
// (new or not), and whether its answer, sent before and since dropped from
// its slot, was queued again.
func (s *Signaler) receive(ps *peerState, sealed []byte) (MessageID, bool, bool) {
	now := s.cfg.Now()
	m, err := open(s.me, sealed, now, s.cfg.Window)
	if err != nil {
		s.count(err)
		return MessageID{}, false, false
	}
	if m.Kind != KindRequest {
		s.count(drop(ReasonGarbled, "an answer in a request slot"))
		return MessageID{}, false, false
	}
	if m.From.Device != ps.Device || m.From.Account != ps.Account {
		s.count(drop(ReasonWrongSender, "from %s in the mailbox of %s", m.From.Device.Short(), ps.Device.Short()))
		return MessageID{}, false, false
	}
	if !s.allowed(m.From.Account) {
		s.count(drop(ReasonNotContact, "account %s", m.From.Account.Short()))
		return MessageID{}, false, false
	}
	s.mu.Lock()
	for id, exp := range s.seen {
		if now.After(exp) {
			delete(s.seen, id)
		}
	}
	for id, a := range s.answered {
		if now.After(a.until) {
			delete(s.answered, id)
		}
	}
	_, replay := s.seen[m.ID]
	if !replay {
		s.seen[m.ID] = m.Time.Add(2 * s.cfg.Window)
		ps.activeUntil = now.Add(s.cfg.ActiveFor)
	}
	ans, wasAnswered := s.answered[m.ID]
	s.mu.Unlock()
	if replay {
		// Pending requests stay in their slot until answered: seeing one
		// again is normal. It is counted, and never delivered twice; if
		// it was answered, the answer is put back in case it left its
		// slot before the requester read it.
		s.dropped[ReasonReplayed].Add(1)
		readd := false
		if wasAnswered && ans.from == ps.Device {
			ob := s.outbox(ps, true)
			readd = !ob.written(m.ID)
			ob.add(m.ID, ans.sealed, ans.until)
		}
		return m.ID, true, readd
	}
	select {
	case s.incoming <- &Incoming{Msg: m, From: ps.Peer, s: s}:
		s.reqRecv.Add(1)
		s.cfg.Logger.Debug("request received", "from", ps.Device.Short(), "id", fmt.Sprintf("%x", m.ID[:4]))
	default:
		s.count(drop(ReasonOverload, "backlog of %d full", s.cfg.Backlog))
	}
	return m.ID, true, false
}

func (s *Signaler) allowed(a identity.AccountID) bool {
	if s.cfg.Allow != nil {
		return s.cfg.Allow(a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.peers {
		if ps.watched && ps.Account == a {
			return true
		}
	}
	return false
}

// listenLoop keeps the subscription's targets (the first request slot of
// every watched peer) up to date (at once on Watch and Unwatch, and every
// second, as a peer's mailbox key changes with its sealing key) and polls a peer at once when a put to
// one of its request slots is notified.
func (s *Signaler) listenLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.mu.Lock()
		var targets [][20]byte
		for _, ps := range s.peers {
			if ps.watched {
				targets = append(targets, ps.q0)
			}
		}
		s.mu.Unlock()
		s.sub.Set(targets)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.rewatch:
		case it := <-s.sub.Updates():
			s.notified(it)
		}
	}
}

// notified makes the peer whose request slot the item is in due now.
func (s *Signaler) notified(it Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.peers {
		if ps.watched && it.Target() == ps.q0 {
			ps.next, ps.listened = time.Time{}, false
		}
	}
}
