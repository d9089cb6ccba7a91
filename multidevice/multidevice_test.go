package multidevice

import (
	"errors"
	"strings"
	"testing"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/transfer"
)

func dev(n byte, s State, bytes int64, err error) Device {
	var id identity.DeviceID
	id[0] = n
	return Device{Device: id, Name: "dev" + string('0'+n), State: s, Bytes: bytes, Total: 1000, Err: err}
}

var (
	errOffline = errors.New("no path")
	errRefused = errors.New("refused: busy")
	errCancel  = errors.New("canceled by receiver")
)

func TestAggregate(t *testing.T) {
	cases := []struct {
		name    string
		devs    []Device
		state   State
		lead    byte
		bytes   int64
		wantErr []string // substrings of the error; nil means no error
	}{
		{"one accepts, the others refuse", []Device{dev(1, Refused, 0, errRefused), dev(2, Ongoing, 300, nil), dev(3, Refused, 0, errRefused)}, Ongoing, 2, 300, nil},
		{"one accepts and finishes, the others refuse", []Device{dev(1, Refused, 0, errRefused), dev(2, Finished, 1000, nil), dev(3, Refused, 0, errRefused)}, Finished, 2, 1000, nil},
		{"one cancels, the others continue", []Device{dev(1, Canceled, 500, errCancel), dev(2, Ongoing, 200, nil), dev(3, Ongoing, 400, nil)}, Ongoing, 3, 400, nil},
		{"one offline, one deciding", []Device{dev(1, Failed, 0, errOffline), dev(2, AwaitingPeer, 0, nil)}, AwaitingPeer, 2, 0, nil},
		{"still connecting beats ended", []Device{dev(1, Failed, 0, errOffline), dev(2, Connecting, 0, nil)}, Connecting, 2, 0, nil},
		{"finished beats further along bytes", []Device{dev(1, Ongoing, 999, nil), dev(2, Finished, 1000, nil)}, Finished, 2, 1000, nil},
		{"all refuse", []Device{dev(1, Refused, 0, errRefused), dev(2, Refused, 0, errRefused)}, Refused, 1, 0, []string{"refused:", "dev1: refused (refused: busy)", "dev2: refused"}},
		{"all fail, each reason", []Device{dev(1, Failed, 0, errOffline), dev(2, Failed, 10, errors.New("digest mismatch"))}, Failed, 2, 10, []string{"no device received the file", "dev1: failed (no path)", "dev2: failed (digest mismatch)"}},
		{"refused and failed: a person said no", []Device{dev(1, Failed, 0, errOffline), dev(2, Refused, 0, errRefused)}, Refused, 2, 0, []string{"refused:", "dev1: failed (no path)"}},
		{"canceled and failed", []Device{dev(1, Failed, 0, errOffline), dev(2, Canceled, 40, errCancel)}, Canceled, 2, 40, []string{"canceled:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := Of(c.devs)
			if a.State != c.state || a.Lead[0] != c.lead || a.Bytes != c.bytes || a.Total != 1000 {
				t.Fatalf("got %v lead %d bytes %d, want %v lead %d bytes %d", a.State, a.Lead[0], a.Bytes, c.state, c.lead, c.bytes)
			}
			if c.wantErr == nil {
				if a.Err != nil {
					t.Fatalf("unexpected error %v", a.Err)
				}
				return
			}
			var de *DevicesError
			if !errors.As(a.Err, &de) || de.State != c.state || len(de.Devices) != len(c.devs) {
				t.Fatalf("error %v", a.Err)
			}
			for _, s := range c.wantErr {
				if !strings.Contains(a.Err.Error(), s) {
					t.Errorf("error %q lacks %q", a.Err, s)
				}
			}
			for _, d := range c.devs {
				if !errors.Is(a.Err, d.Err) {
					t.Errorf("errors.Is misses %v", d.Err)
				}
			}
		})
	}
	if a := Of(nil); a.State != Failed || !errors.Is(a.Err, ErrNoDevices) {
		t.Fatalf("no devices: %+v", a)
	}
}

func TestStates(t *testing.T) {
	for s := Connecting; s <= Failed; s++ {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%v: %s %v %v", s, b, back, err)
		}
		if s.Terminal() != (s >= Finished) {
			t.Fatalf("%v terminal", s)
		}
	}
	var s State
	if s.UnmarshalText([]byte("bogus")) == nil {
		t.Fatal("bogus state parsed")
	}
	for ts, want := range map[transfer.State]State{
		transfer.StateAwaitingPeer: AwaitingPeer, transfer.StateAwaitingDecision: AwaitingDecision, transfer.StateOngoing: Ongoing,
		transfer.StateFinished: Finished, transfer.StateRefused: Refused, transfer.StateCanceled: Canceled, transfer.StateFailed: Failed, 0: Connecting,
	} {
		if got := FromTransfer(ts); got != want {
			t.Errorf("FromTransfer(%v) = %v, want %v", ts, got, want)
		}
	}
}

// TestWaiting: a waiting device has not ended; it leads devices that
// ended without the file, and devices in progress lead it.
func TestWaiting(t *testing.T) {
	w := Device{Device: identity.DeviceID{1}, State: Waiting}
	failed := Device{Device: identity.DeviceID{2}, State: Failed, Err: errors.New("x")}
	refused := Device{Device: identity.DeviceID{3}, State: Refused, Err: errors.New("no")}
	if Waiting.Terminal() || !Failed.Terminal() {
		t.Fatal("Terminal")
	}
	if a := Of([]Device{failed, w, refused}); a.State != Waiting || a.Err != nil || a.Lead != w.Device {
		t.Fatalf("waiting among ended: %+v", a)
	}
	conn := Device{Device: identity.DeviceID{4}, State: Connecting}
	if a := Of([]Device{w, conn}); a.State != Connecting {
		t.Fatalf("connecting vs waiting: %+v", a)
	}
	var s State
	if err := s.UnmarshalText([]byte("waiting")); err != nil || s != Waiting {
		t.Fatalf("%v %v", s, err)
	}
}
