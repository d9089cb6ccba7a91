package peerdrop

import (
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	// EventOffer: an incoming offer arrived (before any decision).
	EventOffer EventKind = "offer"
	// EventState: a transfer, or one device's part of it, changed state.
	EventState EventKind = "state"
	// EventProgress: bytes moved (at most every transfer.Config.ProgressInterval).
	EventProgress EventKind = "progress"
	// EventFile: one file of many in one offer (SendFiles) ended on one
	// device: File names it, State and Err say how.
	EventFile EventKind = "file"
)

// Event reports a change of an incoming or outgoing transfer. For an
// outgoing transfer, an event with a zero Device is the aggregate (the
// optimistic view); the others are one recipient device's own.
type Event struct {
	Kind       EventKind          `json:"event"`
	Time       time.Time          `json:"time"`
	Transfer   transfer.ID        `json:"transfer"`
	Direction  Direction          `json:"direction"`
	Peer       identity.AccountID `json:"peer"`
	Device     identity.DeviceID  `json:"device,omitzero"`
	DeviceName string             `json:"device_name,omitempty"`
	Name       string             `json:"name"`
	State      multidevice.State  `json:"state"`
	Bytes      int64              `json:"bytes"`
	Total      int64              `json:"total"`
	// Files is the number of files of many in one offer.
	Files int     `json:"files,omitempty"`
	Rate  float64 `json:"rate,omitempty"`
	// Relayed is set once connected when the path goes through TURN.
	Relayed bool `json:"relayed,omitempty"`
	// Retry is when a waiting device is tried next, and Until when its
	// tries end (Config.DeliveryWindow).
	Retry time.Time `json:"retry,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// File is the path, in the offer, of the file an EventFile is about.
	File string `json:"file,omitempty"`
	// Path is the saved file of a finished incoming transfer (for many
	// files in one offer, the first top-level folder or file).
	Path string `json:"path,omitempty"`
	Err  error  `json:"-"`
	// Error is Err's text, for JSON.
	Error string `json:"error,omitempty"`
}

func (n *Node) emit(e Event) {
	if n.cfg.OnEvent == nil {
		return
	}
	e.Time = time.Now()
	if e.Err != nil {
		e.Error = e.Err.Error()
	}
	n.eventMu.Lock()
	defer n.eventMu.Unlock()
	n.cfg.OnEvent(e)
}
