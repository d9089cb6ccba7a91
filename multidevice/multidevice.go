// Package multidevice computes the optimistic view of one file sent to
// every device of a contact: the most advanced device defines the state and
// progress the sender sees, and the transfer has failed (or was refused)
// only when every device failed or refused. Each device's own state stays
// available beside the aggregate.
//
// Advancement, from least to most advanced: a device whose sub-transfer
// ended without the file (failed < canceled < refused), then waiting (it
// did not answer and is tried again later), connecting, awaiting the
// peer's decision, ongoing (more bytes is further), finished. A waiting
// device has not ended: the aggregate is Waiting while the most advanced
// device waits. When every device has ended without the file, the
// aggregate is Refused
// if any device refused (a person said no), else Canceled if any was
// canceled, else Failed; its error lists each device's reason.
package multidevice

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/transfer"
)

// State is where one device's sub-transfer, or the aggregate, is.
type State int

// States. Connecting covers signaling, ICE and TLS; AwaitingPeer is an
// offer waiting for the other side's decision, AwaitingDecision (of an
// incoming transfer) one waiting for this device's; Waiting is a device
// that did not answer (offline) and will be tried again; the others match
// transfer.State.
//
// This is peerdrop's one vocabulary of transfer states above the file
// protocol: a device's part (Device), the aggregate, the history
// (peerdrop.Record, DeviceRecord), events (peerdrop.Event) and the mobile
// API (its Progress.State is String's name) all use it, and FromTransfer
// is the one conversion from the file protocol's transfer.State.
const (
	Connecting State = iota + 1
	AwaitingPeer
	Ongoing
	Finished
	Refused
	Canceled
	Failed
	Waiting
	AwaitingDecision
)

var stateNames = [...]string{"", "connecting", "awaiting-peer", "ongoing", "finished", "refused", "canceled", "failed", "waiting", "awaiting-decision"}

func (s State) String() string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText writes the state's name (for JSON events and records).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if i > 0 && n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("multidevice: unknown state %q", b)
}

// Terminal reports whether no further change will happen.
func (s State) Terminal() bool { return s >= Finished && s <= Failed }

// FromTransfer maps a transfer state to a device state.
func FromTransfer(s transfer.State) State {
	switch s {
	case transfer.StateAwaitingPeer:
		return AwaitingPeer
	case transfer.StateAwaitingDecision:
		return AwaitingDecision
	case transfer.StateOngoing:
		return Ongoing
	case transfer.StateFinished:
		return Finished
	case transfer.StateRefused:
		return Refused
	case transfer.StateCanceled:
		return Canceled
	case transfer.StateFailed:
		return Failed
	}
	return Connecting
}

// rank orders states by advancement (see the package comment).
func rank(s State) int {
	switch s {
	case Failed:
		return 0
	case Canceled:
		return 1
	case Refused:
		return 2
	case Waiting:
		return 3
	case Connecting:
		return 4
	case AwaitingPeer, AwaitingDecision:
		return 5
	case Ongoing:
		return 6
	case Finished:
		return 7
	}
	return -1
}

// Device is one device's sub-transfer.
type Device struct {
	Device identity.DeviceID
	Name   string // the name in the contact's device list
	State  State
	Bytes  int64   // bytes the device has (resume offset included)
	Total  int64   // file size
	Rate   float64 // bytes per second, smoothed
	// Relayed is set once connected, when the path goes through a TURN relay.
	Relayed bool
	// Link is how the path goes once connected (ice.Selected.Link:
	// direct, simultaneous-open, mapped or relay).
	Link string
	// Connect is how long ICE took, from the peer's answer to the
	// selected path (ice.Selected.Elapsed).
	Connect time.Duration
	// Reused says the transfer ran on a link kept from an earlier one
	// (no signaling, ICE or TLS of its own; Link and Relayed are that
	// link's).
	Reused bool
	Err    error // why it ended, for Refused, Canceled and Failed; why it waits, for Waiting
	// Retry is when a Waiting device is tried next.
	Retry   time.Time
	Updated time.Time
}

// Ahead reports whether a is more advanced than b.
func Ahead(a, b Device) bool {
	if ra, rb := rank(a.State), rank(b.State); ra != rb {
		return ra > rb
	}
	return a.Bytes > b.Bytes
}

// Aggregate is the optimistic view over all devices.
type Aggregate struct {
	State State
	Bytes int64
	Total int64
	Rate  float64
	// Lead is the device that defines the view (zero with no devices).
	Lead identity.DeviceID
	// Err is set when the aggregate ended without the file: a
	// *DevicesError with every device's reason.
	Err error
}

// Of computes the aggregate of devices. With no devices it is Failed with
// ErrNoDevices.
func Of(devices []Device) Aggregate {
	if len(devices) == 0 {
		return Aggregate{State: Failed, Err: ErrNoDevices}
	}
	lead := devices[0]
	for _, d := range devices[1:] {
		if Ahead(d, lead) {
			lead = d
		}
	}
	a := Aggregate{State: lead.State, Bytes: lead.Bytes, Total: lead.Total, Rate: lead.Rate, Lead: lead.Device}
	if !lead.State.Terminal() || lead.State == Finished {
		return a
	}
	// Every device ended without the file.
	a.Err = &DevicesError{Devices: append([]Device(nil), devices...), State: lead.State}
	return a
}

// ErrNoDevices: the contact has no device to send to.
var ErrNoDevices = errors.New("multidevice: the contact has no devices")

// DevicesError says why every device ended without the file.
type DevicesError struct {
	State   State // the aggregate state: Refused, Canceled or Failed
	Devices []Device
}

func (e *DevicesError) Error() string {
	var b strings.Builder
	switch e.State {
	case Refused:
		b.WriteString("refused")
	case Canceled:
		b.WriteString("canceled")
	default:
		b.WriteString("no device received the file")
	}
	b.WriteString(": ")
	for i, d := range e.Devices {
		if i > 0 {
			b.WriteString("; ")
		}
		name := d.Name
		if name == "" {
			name = d.Device.Short()
		}
		fmt.Fprintf(&b, "%s: %s", name, d.State)
		if d.Err != nil {
			fmt.Fprintf(&b, " (%v)", d.Err)
		}
	}
	return b.String()
}

// Unwrap returns each device's error, for errors.Is and errors.As.
func (e *DevicesError) Unwrap() []error {
	var errs []error
	for _, d := range e.Devices {
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	return errs
}
