package transfer

import (
	"sync"
	"time"
)

// State is where a transfer is. The order of the constants is not
// meaningful; see package multidevice for "most advanced".
type State int

const (
	// StateAwaitingPeer: the sender sent the offer and waits for GO.
	StateAwaitingPeer State = iota + 1
	// StateAwaitingDecision: the receiver holds an offer; the application
	// has to Accept or Refuse it.
	StateAwaitingDecision
	// StateOngoing: data is flowing.
	StateOngoing
	// StateFinished: the receiver verified the digest and saved the file.
	StateFinished
	// StateRefused: the receiver refused the offer.
	StateRefused
	// StateCanceled: one side canceled; Status.Err is a *CancelError.
	StateCanceled
	// StateFailed: an error ended the transfer; Status.Err says which.
	StateFailed
)

var stateNames = map[State]string{
	StateAwaitingPeer: "awaiting peer", StateAwaitingDecision: "awaiting decision",
	StateOngoing: "ongoing", StateFinished: "finished", StateRefused: "refused",
	StateCanceled: "canceled", StateFailed: "failed",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "unknown"
}

// Terminal reports whether no further change will happen.
func (s State) Terminal() bool {
	return s == StateFinished || s == StateRefused || s == StateCanceled || s == StateFailed
}

// Status is a snapshot of a transfer.
type Status struct {
	ID     ID
	State  State
	Bytes  int64   // bytes of the file the receiver has (resume offset included)
	Total  int64   // file size
	Offset int64   // where this session resumed
	Rate   float64 // bytes per second, smoothed
	Err    error   // why it ended, for Refused, Canceled and Failed
	Path   string  // receiver: where the file was saved, once Finished
}

// Event is passed to Config.OnEvent on every state change and, at most
// every ProgressInterval, while data flows.
type Event struct {
	Status
	Outgoing bool // true for the sender's events
	Progress bool // true for a progress tick, false for a state change
}

// tracker holds a transfer's Status and emits events.
type tracker struct {
	cfg      *Config
	outgoing bool

	mu       sync.Mutex
	st       Status
	lastEmit time.Time
	rateAt   time.Time
	rateAtB  int64

	emitMu sync.Mutex // serializes OnEvent calls
}

func (t *tracker) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// set moves to state s (ignored once terminal) and emits an event.
// It reports whether the state changed.
func (t *tracker) set(s State, err error) bool {
	t.mu.Lock()
	if t.st.State.Terminal() {
		t.mu.Unlock()
		return false
	}
	t.st.State = s
	if err != nil {
		t.st.Err = err
	}
	if s == StateOngoing {
		t.rateAt, t.rateAtB = time.Now(), t.st.Bytes
	}
	ev := Event{Status: t.st, Outgoing: t.outgoing}
	t.mu.Unlock()
	t.emit(ev)
	return true
}

// add counts n more bytes and emits a progress event if one is due.
func (t *tracker) add(n int64) {
	t.mu.Lock()
	t.st.Bytes += n
	now := time.Now()
	if now.Sub(t.lastEmit) < t.cfg.ProgressInterval {
		t.mu.Unlock()
		return
	}
	if dt := now.Sub(t.rateAt).Seconds(); dt > 0 {
		inst := float64(t.st.Bytes-t.rateAtB) / dt
		if t.st.Rate == 0 {
			t.st.Rate = inst
		} else {
			t.st.Rate = 0.5*t.st.Rate + 0.5*inst
		}
	}
	t.rateAt, t.rateAtB, t.lastEmit = now, t.st.Bytes, now
	ev := Event{Status: t.st, Outgoing: t.outgoing, Progress: true}
	t.mu.Unlock()
	t.emit(ev)
}

func (t *tracker) emit(ev Event) {
	if t.cfg.OnEvent == nil {
		return
	}
	t.emitMu.Lock()
	defer t.emitMu.Unlock()
	t.cfg.OnEvent(ev)
}
