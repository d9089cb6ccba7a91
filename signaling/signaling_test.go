package signaling

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type who struct {
	acct *identity.Account
	dev  *identity.Device
}

func newWho(t testing.TB) who {
	t.Helper()
	a, err := identity.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.NewDevice(nil, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return who{a, d}
}

func (w who) peer() Peer {
	return Peer{Account: w.acct.ID(), Device: w.dev.ID(), Sealing: w.dev.Cert().SealingKey}
}

// iceText is a realistic ICE description: IPv4 and IPv6 host, reflexive,
// relay, as the ice package produces it.
func iceText(t testing.TB) []byte {
	ap := netip.MustParseAddrPort
	d := ice.Description{Ufrag: "Hq1vGN3Z", Pwd: "2V4gJrLk1yq0pWn7fXbM3sTe"}
	for i, c := range []ice.Candidate{
		{Type: ice.Host, TCPType: ice.Passive, Addr: ap("192.168.178.23:50123"), Priority: 2122252543},
		{Type: ice.Host, TCPType: ice.Active, Addr: ap("192.168.178.23:9"), Priority: 2122776831},
		{Type: ice.Host, TCPType: ice.Passive, Addr: ap("[2a02:8109:b6c0:1a2b:3c4d:5e6f:7a8b:9c0d]:50124"), Priority: 2122285311},
		{Type: ice.Host, TCPType: ice.Active, Addr: ap("[2a02:8109:b6c0:1a2b:3c4d:5e6f:7a8b:9c0d]:9"), Priority: 2122809599},
		{Type: ice.ServerReflexive, TCPType: ice.Active, Addr: ap("203.0.113.77:9"), Priority: 1686110207},
		{Type: ice.Relay, TCPType: ice.Passive, Addr: ap("198.51.100.10:61234"), Related: ap("203.0.113.77:40512"), Priority: 8388351},
	} {
		c.Foundation = fmt.Sprint(i + 1)
		d.Candidates = append(d.Candidates, c)
	}
	b, err := d.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	a, b := newWho(t), newWho(t)
	now := time.Now()
	payload := iceText(t)
	id := newMessageID()
	sealed, err := seal(a.dev, b.dev.ID(), b.dev.Cert().SealingKey, KindRequest, id, MessageID{}, now, payload)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ICE description %d bytes → sealed message %d bytes (limit %d)", len(payload), len(sealed), MaxSealed)
	m, err := open(b.dev, sealed, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != id || m.Kind != KindRequest || m.From.Account != a.acct.ID() || m.From.Device != a.dev.ID() ||
		m.To != b.dev.ID() || !bytes.Equal(m.Payload, payload) {
		t.Fatalf("opened %+v", m)
	}
	// The sealed form must fit a BEP 44 value.
	if _, err := signItem(a.dev.SigningKey(), requestSalts[0], 1, sealed); err != nil {
		t.Fatalf("does not fit a DHT value: %v", err)
	}
}

func TestSealLimit(t *testing.T) {
	a, b := newWho(t), newWho(t)
	// Incompressible payloads: find the largest that fits, then one more byte.
	fits := 0
	for n := 200; n < 900; n++ {
		p := make([]byte, n)
		_, _ = rand.Read(p)
		if _, err := seal(a.dev, b.dev.ID(), b.dev.Cert().SealingKey, KindRequest, newMessageID(), MessageID{}, time.Now(), p); err != nil {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatal(err)
			}
			break
		}
		fits = n
	}
	t.Logf("largest incompressible payload that fits: %d bytes", fits)
	if fits < 300 {
		t.Fatalf("only %d bytes of payload fit", fits)
	}
}

func TestOpenRejects(t *testing.T) {
	a, b, c := newWho(t), newWho(t), newWho(t)
	now := time.Now()
	mk := func(from who, to who, at time.Time) []byte {
		s, err := seal(from.dev, to.dev.ID(), to.dev.Cert().SealingKey, KindRequest, newMessageID(), MessageID{}, at, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := mk(a, b, now)

	// Forged: a valid inner message re-signed by another key, sealed properly.
	forged := func() []byte {
		inner := sealInner(t, a.dev, b.dev.ID(), now)
		copy(inner[len(inner)-64:], c.dev.Sign([]byte("x"))) // wrong signature
		return sealRaw(t, inner, b.dev.Cert().SealingKey)
	}()
	// Bad chain: a certificate whose account signature is broken.
	badChain := func() []byte {
		inner := sealInner(t, a.dev, b.dev.ID(), now)
		inner[76+len(a.dev.Cert().Raw)-10] ^= 0xff // inside the cert's signature
		return sealRaw(t, inner, b.dev.Cert().SealingKey)
	}()
	corrupt := append([]byte(nil), good...)
	corrupt[100] ^= 1
	for name, tc := range map[string]struct {
		sealed []byte
		want   Reason
	}{
		"oversized":    {make([]byte, MaxSealed+1), ReasonOversized},
		"garbage":      {bytes.Repeat([]byte{1}, 500), ReasonGarbled},
		"corrupt":      {corrupt, ReasonGarbled},
		"other device": {mk(a, c, now), ReasonGarbled}, // sealed to c: b cannot decrypt
		"stale":        {mk(a, b, now.Add(-10*time.Minute)), ReasonStale},
		"future":       {mk(a, b, now.Add(10*time.Minute)), ReasonStale},
		"forged":       {forged, ReasonForged},
		"bad chain":    {badChain, ReasonBadChain},
		"misaddressed": {sealRaw(t, sealInner(t, a.dev, c.dev.ID(), now), b.dev.Cert().SealingKey), ReasonMisaddressed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := open(b.dev, tc.sealed, now, 2*time.Minute)
			var de *DropError
			if !errors.As(err, &de) || de.Reason != tc.want {
				t.Fatalf("got %v, want reason %q", err, tc.want)
			}
		})
	}
}

// sealInner builds a signed inner message (for tests that tamper with it).
func sealInner(t testing.TB, from *identity.Device, to identity.DeviceID, now time.Time) []byte {
	t.Helper()
	// Seal to ourselves and decrypt, to reuse seal's encoding.
	s, err := seal(from, to, from.Cert().SealingKey, KindRequest, newMessageID(), MessageID{}, now, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	eph, _ := ecdh.X25519().NewPublicKey(s[1:33])
	aead, nonce, err := sealKey(from.SealingKey(), eph, s[1:33], from.SealingKey().PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	inner, err := aead.Open(nil, nonce, s[33:], s[:33])
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

func sealRaw(t testing.TB, inner []byte, to *ecdh.PublicKey) []byte {
	t.Helper()
	eph, _ := ecdh.X25519().GenerateKey(rand.Reader)
	aead, nonce, err := sealKey(eph, to, eph.PublicKey().Bytes(), to.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{sealVersion}, eph.PublicKey().Bytes()...)
	return aead.Seal(out, nonce, inner, out[:33])
}

func FuzzOpen(f *testing.F) {
	a, b := newWho(f), newWho(f)
	now := time.Now()
	s, _ := seal(a.dev, b.dev.ID(), b.dev.Cert().SealingKey, KindRequest, newMessageID(), MessageID{}, now, []byte("hello"))
	f.Add(s)
	f.Add(sealInner(f, a.dev, b.dev.ID(), now))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = open(b.dev, data, now, time.Minute)
		// The inner parser too, as if decryption had succeeded.
		_, _ = parseInner(b.dev.ID(), data, now, time.Minute)
		_, _ = parseDeviceList(a.acct.ID(), data)
	})
}

func TestDeviceList(t *testing.T) {
	ctx := context.Background()
	tr := &MemoryTransport{}
	a := newWho(t)
	d2, err := a.acct.NewDevice(nil, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	list := &DeviceList{Devices: []DeviceEntry{EntryFor(a.dev, "laptop"), EntryFor(d2, "phone \x1b[31m")}}
	if err := PublishDeviceList(ctx, tr, a.acct, list); err != nil {
		t.Fatal(err)
	}
	got, err := LookupDeviceList(ctx, tr, a.acct.ID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Devices) != 2 || got.Devices[1].Device != d2.ID() || !got.Devices[1].Sealing.Equal(d2.Cert().SealingKey) || got.Devices[1].Name != "phone [31m" {
		t.Fatalf("got %+v", got.Devices)
	}
	// Revoke d2: a newer list replaces the old one.
	dir := &Directory{Transport: tr, TTL: time.Hour}
	if l, _ := dir.Lookup(ctx, a.acct.ID()); len(l.Devices) != 2 {
		t.Fatal("directory")
	}
	list2 := &DeviceList{Devices: []DeviceEntry{EntryFor(a.dev, "laptop")}, Updated: got.Updated.Add(time.Second)}
	if err := PublishDeviceList(ctx, tr, a.acct, list2); err != nil {
		t.Fatal(err)
	}
	if l, _ := dir.Lookup(ctx, a.acct.ID()); len(l.Devices) != 2 {
		t.Fatal("the cache should serve the old list until its TTL")
	}
	dir.Forget(a.acct.ID())
	if l, _ := dir.Lookup(ctx, a.acct.ID()); len(l.Devices) != 1 {
		t.Fatalf("after revocation: %+v", l.Devices)
	}
	// An older list cannot replace a newer one.
	if err := PublishDeviceList(ctx, tr, a.acct, &DeviceList{Devices: list.Devices, Updated: got.Updated}); !errors.Is(err, ErrNotStored) {
		t.Fatalf("older list: %v", err)
	}
	// Another account cannot write under a's key: the lookup verifies the signature.
	var key [32]byte
	copy(key[:], a.acct.ID().PublicKey())
	forged, _ := signItem(newWho(t).acct.PrivateKey(), deviceListSalt, time.Now().UnixMilli(), []byte{1})
	forged.Key = key
	if forged.Verify() {
		t.Fatal("forged item verifies")
	}
	// Nine devices do not fit.
	var many []DeviceEntry
	for i := 0; i < MaxDevices+1; i++ {
		many = append(many, EntryFor(a.dev, "x"))
	}
	if err := PublishDeviceList(ctx, tr, a.acct, &DeviceList{Devices: many}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("9 devices: %v", err)
	}
	full := &DeviceList{Devices: many[:MaxDevices], Updated: got.Updated.Add(2 * time.Second)}
	for i := range full.Devices {
		full.Devices[i].Name = "a name thirty-two bytes long...."
	}
	if err := PublishDeviceList(ctx, tr, a.acct, full); err != nil {
		t.Fatalf("8 devices with long names: %v", err)
	}
}

func testSignalers(t testing.TB, tr Transport, a, b who) (*Signaler, *Signaler) {
	t.Helper()
	sa, err := New(&Config{Device: a.dev, Transport: tr, MinPoll: 20 * time.Millisecond, AnswerPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close() })
	sb, err := New(&Config{Device: b.dev, Transport: tr, MinPoll: 20 * time.Millisecond, AnswerPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sa, sb
}

// answerAll answers every request with "re:" + payload until ctx ends.
func answerAll(ctx context.Context, s *Signaler, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-s.Incoming():
			_ = in.Answer(ctx, append([]byte("re:"), in.Msg.Payload...))
		}
	}
}

func TestRequestAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &MemoryTransport{Latency: time.Millisecond}
	a, b := newWho(t), newWho(t)
	sa, sb := testSignalers(t, tr, a, b)
	if err := sb.Watch(a.peer()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go answerAll(actx, sb, &wg)
	defer func() { stop(); wg.Wait() }()

	payload := iceText(t)
	ans, err := sa.Request(ctx, b.peer(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ans.Payload, append([]byte("re:"), payload...)) || ans.From.Device != b.dev.ID() {
		t.Fatalf("answer %q from %s", ans.Payload, ans.From.Device.Short())
	}

	// Six requests at once: more than the four slots, none lost.
	var rwg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			p := []byte(fmt.Sprintf("request %d", i))
			ans, err := sa.Request(ctx, b.peer(), p)
			if err == nil && !bytes.Equal(ans.Payload, append([]byte("re:"), p...)) {
				err = fmt.Errorf("request %d got %q", i, ans.Payload)
			}
			errs <- err
		}()
	}
	rwg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := sb.Stats()
	if st.RequestsReceived != 7 {
		t.Errorf("B received %d requests, want 7 (stats %+v)", st.RequestsReceived, st)
	}
	for r, n := range st.Dropped {
		if r != ReasonReplayed {
			t.Errorf("dropped %d as %s", n, r)
		}
	}
}

func TestNonContactDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &MemoryTransport{}
	a, b := newWho(t), newWho(t)
	sa, err := New(&Config{Device: a.dev, Transport: tr, AnswerPoll: 10 * time.Millisecond, RequestTTL: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := New(&Config{Device: b.dev, Transport: tr, MinPoll: 20 * time.Millisecond,
		Allow: func(identity.AccountID) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_ = sb.Watch(a.peer())
	if _, err := sa.Request(ctx, b.peer(), []byte("hi")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want no answer, got %v", err)
	}
	if n := sb.Stats().Dropped[ReasonNotContact]; n == 0 {
		t.Fatalf("not counted: %+v", sb.Stats())
	}
	select {
	case in := <-sb.Incoming():
		t.Fatalf("delivered %+v", in.Msg)
	default:
	}
}

func TestSetPollBudget(t *testing.T) {
	// Background: one watched device, 0.05 gets/s, so it is polled once
	// and then not for 20 s. Foreground: polled every MinPoll at once.
	a, b := newWho(t), newWho(t)
	s, err := New(&Config{Device: a.dev, Transport: &MemoryTransport{}, PollBudget: 0.05, MinPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Watch(b.peer()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if g := s.Stats().Gets; g > 2 {
		t.Fatalf("background: %d gets in 400 ms", g)
	}
	s.SetPollBudget(100)
	before := s.Stats().Gets
	time.Sleep(400 * time.Millisecond)
	if g := s.Stats().Gets - before; g < 5 {
		t.Fatalf("foreground: only %d gets in 400 ms", g)
	}
}

// TestConstantItems: hundreds of exchanges, many at once, use no more
// than the eight slots per direction.
func TestConstantItems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := &MemoryTransport{}
	a, b := newWho(t), newWho(t)
	sa, sb := testSignalers(t, tr, a, b)
	if err := sb.Watch(a.peer()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	actx, stop := context.WithCancel(ctx)
	go answerAll(actx, sb, &wg)
	defer func() { stop(); wg.Wait() }()

	const n, parallel = 300, 6
	sem := make(chan struct{}, parallel)
	errs := make(chan error, n)
	var rwg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			defer func() { <-sem }()
			p := []byte(fmt.Sprintf("request %d", i))
			ans, err := sa.Request(ctx, b.peer(), p)
			if err == nil && !bytes.Equal(ans.Payload, append([]byte("re:"), p...)) {
				err = fmt.Errorf("request %d got %q", i, ans.Payload)
			}
			errs <- err
		}()
	}
	rwg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if items := tr.Items(); items > 2*slots {
		t.Fatalf("%d exchanges left %d items, want at most %d", n, items, 2*slots)
	}
	if st := sb.Stats(); st.RequestsReceived != n || st.AnswersSent != n {
		t.Fatalf("B stats %+v", st)
	}
}

// TestAnswerPutBack: an answer dropped from its slot while the requester
// still waits (as after a stale read) is put back when the request is seen
// again.
func TestAnswerPutBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &MemoryTransport{}
	a, b := newWho(t), newWho(t)
	_, sb := testSignalers(t, tr, newWho(t), b)
	// A reads its answer slots only when the test says so.
	sa, err := New(&Config{Device: a.dev, Transport: tr, AnswerPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	_ = sb.Watch(a.peer())
	got := make(chan error, 1)
	go func() {
		_, err := sa.Request(ctx, b.peer(), []byte("hi"))
		got <- err
	}()
	var in *Incoming
	select {
	case in = <-sb.Incoming():
	case <-ctx.Done():
		t.Fatal("no request")
	}
	// Answer, then wipe the answer slot the way a lost item would look.
	if err := in.Answer(ctx, []byte("re")); err != nil {
		t.Fatal(err)
	}
	ps, _ := sb.peer(a.peer())
	ob := sb.outbox(ps, true)
	ob.remove(in.Msg.ID)
	if err := ob.sync(ctx, sb, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "answer put back", func() bool { return ob.written(in.Msg.ID) })
	sa.pollAnswers(ctx, sa.mustPeer(t, b.peer()))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func (s *Signaler) mustPeer(t *testing.T, p Peer) *peerState {
	ps, err := s.peer(p)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
