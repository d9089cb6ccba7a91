package peerdrop

import (
	"context"
	"fmt"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
)

// ContactDevices looks up a contact's devices (fresh, not cached).
func (n *Node) ContactDevices(ctx context.Context, contact identity.AccountID) ([]signaling.DeviceEntry, error) {
	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	n.dir.Forget(contact)
	l, err := n.dir.Lookup(ctx, contact)
	if err != nil {
		return nil, err
	}
	return l.Devices, nil
}

// Contacts returns the contacts.
func (n *Node) Contacts() []identity.Contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]identity.Contact, 0, len(n.contacts))
	for _, c := range n.contacts {
		out = append(out, c)
	}
	return out
}

// AddContact trusts an account: its devices may send files to this node,
// and this node may send to them.
func (n *Node) AddContact(id identity.AccountID, name string) (identity.Contact, error) {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	c, err := n.store.AddContact(id, name)
	if err != nil {
		return c, err
	}
	n.mu.Lock()
	n.contacts[id] = c
	n.mu.Unlock()
	n.refreshContacts()
	return c, nil
}

// RemoveContact stops trusting an account: its requests are dropped from
// now on.
func (n *Node) RemoveContact(id identity.AccountID) error {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	if err := n.store.RemoveContact(id); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.contacts, id)
	n.mu.Unlock()
	n.dir.Forget(id)
	return nil
}

func (n *Node) isContact(id identity.AccountID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.contacts[id]
	return ok
}

func (n *Node) contact(id identity.AccountID) (identity.Contact, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.contacts[id]
	return c, ok
}

// refreshContacts makes the watcher fetch contacts' device lists now.
func (n *Node) refreshContacts() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// RefreshContacts reads the contacts again from the key store (another
// process may have edited it), fetches every contact's device list now
// and watches their devices' mailboxes; it returns the first error.
func (n *Node) RefreshContacts(ctx context.Context) error {
	n.reloadContacts()
	n.refreshContacts() // the watcher updates its list subscriptions
	return n.syncWatches(ctx, true)
}

// watchContacts keeps the signaler watching every device of every contact.
// Contacts added or removed by another process (a command-line tool
// editing the key store while this Node runs) are picked up at each round.
// A contact whose list is not found yet (it never ran, or its device
// started a moment ago) is looked up again after 0.25s, 0.5s, 1s, 2s, 4s,
// then every 5s: a first contact is noticed quickly.
func (n *Node) watchContacts() {
	defer n.wg.Done()
	if n.waitReady(n.ctx) != nil {
		return
	}
	const firstRetry = 250 * time.Millisecond
	retry := firstRetry
	for {
		n.reloadContacts()
		if n.lists != nil {
			var targets [][20]byte
			for _, c := range n.Contacts() {
				targets = append(targets, signaling.DeviceListTarget(c.ID))
			}
			n.lists.Set(targets)
		}
		ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
		err := n.syncWatches(ctx, false)
		cancel()
		wait := time.Duration(n.contactRefresh.Load())
		if err != nil {
			wait = min(wait, retry)
			retry = min(2*retry, 5*time.Second)
		} else {
			retry = firstRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-n.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// listenLists refreshes a contact's devices as soon as its device list is
// put (a device of it started, joined or was revoked), where the transport
// can notify: a device started after this one is watched at once, not at
// the watcher's next retry (up to 5 s later, or ContactRefresh).
func (n *Node) listenLists() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case it, ok := <-n.lists.Updates():
			if !ok {
				return
			}
			target := it.Target()
			for _, c := range n.Contacts() {
				if signaling.DeviceListTarget(c.ID) == target {
					n.dir.Forget(c.ID)
					n.refreshContacts()
					n.wakeDeliveries(c.ID, identity.DeviceID{}) // a device of it (re)started

				}
			}
		}
	}
}

// reloadContacts reads the contacts from the key store again.
func (n *Node) reloadContacts() {
	n.contactsMu.Lock()
	defer n.contactsMu.Unlock()
	cs, err := n.store.Contacts()
	if err != nil {
		n.log.Warn("cannot read contacts", "err", err)
		return
	}
	m := make(map[identity.AccountID]identity.Contact, len(cs))
	for _, c := range cs {
		m[c.ID] = c
	}
	n.mu.Lock()
	n.contacts = m
	n.mu.Unlock()
}

// syncWatches looks up each contact's devices and watches them; devices
// that left a list, and accounts no longer contacts, are unwatched.
func (n *Node) syncWatches(ctx context.Context, fresh bool) error {
	var first error
	contacts := n.Contacts()
	seen := make(map[identity.AccountID]bool)
	for _, c := range contacts {
		seen[c.ID] = true
		if fresh {
			n.dir.Forget(c.ID)
		}
		start := time.Now()
		l, err := n.dir.Lookup(ctx, c.ID)
		if err != nil {
			n.log.Debug("contact's devices not found", "contact", c.Name, "err", err, "took", time.Since(start))
			if first == nil {
				first = fmt.Errorf("%s: %w", c.Name, err)
			}
			continue
		}
		var devs []identity.DeviceID
		for _, d := range l.Devices {
			if err := n.sig.Watch(d.Peer(c.ID)); err == nil {
				devs = append(devs, d.Device)
			}
		}
		n.mu.Lock()
		old := n.watched[c.ID]
		n.watched[c.ID] = devs
		n.mu.Unlock()
		for _, o := range old {
			if _, still := l.Entry(o); !still {
				n.sig.Unwatch(o)
			}
		}
	}
	n.mu.Lock()
	var gone []identity.DeviceID
	for a, devs := range n.watched {
		if !seen[a] {
			gone = append(gone, devs...)
			delete(n.watched, a)
		}
	}
	n.mu.Unlock()
	for _, d := range gone {
		n.sig.Unwatch(d)
	}
	return first
}
