package dht

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/signaling"
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

func (w who) peer() signaling.Peer {
	return signaling.Peer{Account: w.acct.ID(), Device: w.dev.ID(), Sealing: w.dev.Cert().SealingKey}
}

// iceText is a payload of the size of a real ICE description.
func iceText(testing.TB) []byte {
	return []byte("a=ice-ufrag:Hq1vGN3Z\r\na=ice-pwd:2V4gJrLk1yq0pWn7fXbM3sTe\r\n" +
		"a=candidate:1 1 tcp 2122252543 192.168.178.23 50123 typ host tcptype passive\r\n" +
		"a=candidate:2 1 tcp 2122776831 192.168.178.23 9 typ host tcptype active\r\n" +
		"a=candidate:3 1 tcp 1686110207 203.0.113.77 9 typ srflx tcptype active\r\n")
}

// answerAll answers every request with "re:" + payload until ctx ends.
func answerAll(ctx context.Context, s *signaling.Signaler, wg *sync.WaitGroup) {
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
