package signaling

import (
	"context"
	"crypto/ed25519"
	"sync"
	"time"
)

// An outbox holds the pending messages to one peer device in the lowest of
// four slots (request slots "q0".."q3" or answer slots "r0".."r3"),
// compacted as messages leave, with a tombstone (an empty value) in the
// first unused slot when the set shrinks. The item count per device pair
// is therefore constant: eight targets per direction, each updated in
// place with a rising seq.

// outbox keeps the pending messages of one kind to one peer.
type outbox struct {
	key     ed25519.PrivateKey
	salts   *[slots][]byte
	mu      sync.Mutex // serializes syncs
	entries []outEntry
	slots   [slots]slotState
}

// outEntry is one pending message. id is the request ID for requests and
// the ID of the request answered for answers.
type outEntry struct {
	id      MessageID
	sealed  []byte
	until   time.Time // dropped after
	written time.Time // first stored in a slot; zero until then
}

type slotState struct {
	used    bool      // ever written by this process
	id      MessageID // zero: tombstone
	item    Item
	written time.Time
}

func (s *Signaler) outbox(ps *peerState, answers bool) *outbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, salts := s.requestsOut, &requestSalts
	if answers {
		m, salts = s.answersOut, &answerSalts
	}
	ob := m[ps.Device]
	if ob == nil || !ob.key.Equal(ps.out) {
		ob = &outbox{key: ps.out, salts: salts}
		m[ps.Device] = ob
	}
	return ob
}

// add queues a message unless one with the same id is queued.
func (o *outbox) add(id MessageID, sealed []byte, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		if e.id == id {
			return
		}
	}
	o.entries = append(o.entries, outEntry{id: id, sealed: sealed, until: until})
}

func (o *outbox) remove(id MessageID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.removeLocked(func(e outEntry) bool { return e.id == id })
}

func (o *outbox) removeLocked(drop func(outEntry) bool) bool {
	kept := o.entries[:0]
	for _, e := range o.entries {
		if !drop(e) {
			kept = append(kept, e)
		}
	}
	clear(o.entries[len(kept):])
	changed := len(kept) != len(o.entries)
	o.entries = kept
	return changed
}

// prune drops expired entries and, given the request IDs a complete read
// of the peer's request slots found (a read that began at readStart),
// every answer whose request was gone although it was written before the
// read began: the requester has it. A stale read that drops an answer too
// early is repaired when the request is seen again (Signaler.receive).
func (o *outbox) prune(now time.Time, live map[MessageID]bool, readStart time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.removeLocked(func(e outEntry) bool {
		if now.After(e.until) {
			return true
		}
		return live != nil && !live[e.id] && !e.written.IsZero() && e.written.Before(readStart)
	})
}

// sync writes every slot whose content differs from what it should hold:
// entries[i] in slot i, a tombstone in the first slot after them; with
// republish, it also puts again every message slot written longer than
// republish ago (DHT nodes come and go).
func (o *outbox) sync(ctx context.Context, s *Signaler, republish time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var firstErr error
	now := s.cfg.Now()
	for i := 0; i < slots; i++ {
		var want MessageID
		var value []byte
		switch {
		case i < len(o.entries):
			want, value = o.entries[i].id, o.entries[i].sealed
		case i == len(o.entries) && o.slots[i].used && o.slots[i].id != (MessageID{}):
			// tombstone: an empty value ends the reader's chain here
		default:
			continue
		}
		sl := &o.slots[i]
		it := sl.item
		if !sl.used || sl.id != want {
			var err error
			if it, err = signItem(o.key, o.salts[i], s.nextSeq(), value); err != nil {
				return err
			}
		} else if republish == 0 || want == (MessageID{}) || now.Sub(sl.written) < republish {
			continue
		}
		if err := s.put(ctx, it); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		*sl = slotState{used: true, id: want, item: it, written: now}
		if i < len(o.entries) && o.entries[i].written.IsZero() {
			o.entries[i].written = now
		}
	}
	return firstErr
}

// written reports whether the message id sits in a slot.
func (o *outbox) written(id MessageID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, sl := range o.slots {
		if sl.used && sl.id == id {
			return true
		}
	}
	return false
}
