package signaling

import (
	"context"
	"crypto/ed25519"
	"sync"
)

// The outbox of requests to one peer device: pending requests fill the
// lowest of the four request slots, compacted as they are answered.

func (s *Signaler) outbox(ps *peerState) *outbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	ob := s.outboxes[ps.Device]
	if ob == nil || !ob.key.Equal(ps.out) {
		ob = &outbox{key: ps.out}
		s.outboxes[ps.Device] = ob
	}
	return ob
}

// outbox keeps the pending requests to one peer in the lowest slots.
type outbox struct {
	key     ed25519.PrivateKey
	mu      sync.Mutex // serializes syncs
	pending []pendingReq
	slots   [requestSlots]slotState
}

type pendingReq struct {
	id     MessageID
	sealed []byte
}

type slotState struct {
	used bool      // ever written by this process
	id   MessageID // zero: tombstone
	item Item
}

func (o *outbox) add(id MessageID, sealed []byte) {
	o.mu.Lock()
	o.pending = append(o.pending, pendingReq{id, sealed})
	o.mu.Unlock()
}

func (o *outbox) remove(id MessageID) {
	o.mu.Lock()
	for i, p := range o.pending {
		if p.id == id {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			break
		}
	}
	o.mu.Unlock()
}

// sync writes every slot whose content differs from what it should hold:
// pending[i] in slot i, a tombstone in the first slot after them.
func (o *outbox) sync(ctx context.Context, s *Signaler) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var firstErr error
	for i := 0; i < requestSlots; i++ {
		var want MessageID
		var value []byte
		switch {
		case i < len(o.pending):
			want, value = o.pending[i].id, o.pending[i].sealed
		case i == len(o.pending) && o.slots[i].used && o.slots[i].id != (MessageID{}):
			// tombstone: an empty value ends the reader's chain here
		default:
			continue
		}
		if o.slots[i].used && o.slots[i].id == want {
			continue
		}
		it, err := signItem(o.key, slotSalts[i], s.nextSeq(), value)
		if err != nil {
			return err
		}
		if err := s.put(ctx, it); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		o.slots[i] = slotState{used: true, id: want, item: it}
	}
	return firstErr
}

// republish puts the slot holding id again, unchanged.
func (o *outbox) republish(ctx context.Context, s *Signaler, id MessageID) error {
	o.mu.Lock()
	var it *Item
	for i := range o.slots {
		if o.slots[i].used && o.slots[i].id == id {
			it = &o.slots[i].item
		}
	}
	o.mu.Unlock()
	if it == nil {
		return o.sync(ctx, s) // still waiting for a slot, or its put failed
	}
	return s.put(ctx, *it)
}
