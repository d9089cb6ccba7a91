package peerdrop

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/peerdrop/peerdrop/signaling"
)

// TestContactStartsLater: Bob runs, Alice (a contact) has never run. When
// Alice's node starts and publishes her device list, Bob's node, which
// listens to its contacts' device lists on the DHT, watches her device
// at once: long before its retry schedule (0.25, 0.5, 1, 2, 4 s, then
// every 5 s: the next lookup after Alice starts comes at 7.75 s).
func TestContactStartsLater(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, republishes)
	tn := newTestNet(t, 3)
	aliceHome := filepath.Join(t.TempDir(), "alice")
	aliceID, _, err := Init(aliceHome, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob := tn.node(t, "bob", func(c *Config) { c.ContactRefresh = time.Hour })
	if _, err := bob.AddContact(aliceID, "alice"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // Bob's lookups of Alice fail, their retries slow down
	start := time.Now()
	alice := tn.open(t, aliceHome, nil)
	watched := func() bool {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		return len(bob.watched[aliceID]) == 1 && bob.watched[aliceID][0] == alice.Device()
	}
	deadline := start.Add(3 * time.Second) // the retry would come 3.75 s after Alice's start
	for !watched() {
		if time.Now().After(deadline) {
			t.Fatalf("Bob does not watch Alice's device %v after her start", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Bob watches Alice's device %v after her node started", time.Since(start).Round(time.Millisecond))
}

// TestManyContacts: a device that starts after its ten contacts, on a
// DHT that grew with them, sees every one's devices, and each sees it.
// Their lists were first stored at the nodes closest to them when the DHT
// was smaller; the keepers' early republishes (2 s, 8 s, …) store them
// where a lookup now asks (before, the first contact's list stayed
// unfound for the 30 s this allows).
func TestManyContacts(t *testing.T) {
	t.Parallel() // it mostly waits (timeouts, republishes)
	tn := newTestNet(t, 4)
	var contacts []*testNode
	for i := 0; i < 10; i++ {
		contacts = append(contacts, tn.node(t, "contact-"+string(rune('a'+i)), nil))
	}
	dev := tn.node(t, "phone", nil)
	for i, c := range contacts {
		if _, err := dev.AddContact(c.Account(), fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddContact(dev.Account(), "phone"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range contacts {
		converge(t, []*testNode{dev}, []*testNode{c})
	}
}

// TestSetContactRefresh: a device added to a contact's account is watched
// at the next refresh: not for an hour with ContactRefresh at an hour
// (no listen notifications on this transport), at once once
// SetContactRefresh shortens it.
func TestSetContactRefresh(t *testing.T) {
	tn := &testNet{mem: &signaling.MemoryTransport{}} // polled only: no notifications
	slow := func(c *Config) { c.ContactRefresh = time.Hour }
	alice := tn.node(t, "alice", slow)
	bob := tn.node(t, "bob", nil)
	befriend(t, []*testNode{alice}, []*testNode{bob})
	converge(t, []*testNode{alice}, []*testNode{bob})
	bob2 := tn.join(t, bob, "bob-2", nil)
	watches := func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		for _, d := range alice.watched[bob.Account()] {
			if d == bob2.Device() {
				return true
			}
		}
		return false
	}
	waitFor(t, 5*time.Second, func() bool {
		l, err := bob2.ContactDevices(context.Background(), bob.Account())
		return err == nil && len(l) == 2
	})
	time.Sleep(300 * time.Millisecond)
	if watches() {
		t.Fatal("the new device is watched before any refresh")
	}
	alice.SetContactRefresh(100 * time.Millisecond)
	waitFor(t, 5*time.Second, watches)
}
