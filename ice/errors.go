package ice

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrBadDescription: a peer's description is malformed or too large.
	ErrBadDescription = errors.New("ice: bad description")
	// ErrNoPath: every path that could be tried failed; the *ConnectError
	// that wraps it says how each one did.
	ErrNoPath = errors.New("ice: no path to the peer")
	// ErrClosed: the agent or session was closed.
	ErrClosed = errors.New("ice: closed")
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("ice: invalid config")
	// ErrInUse: Connect was called twice on one session.
	ErrInUse = errors.New("ice: session already connecting or connected")
)

// Reason says why a path failed, in words a user can act on.
type Reason uint8

// Reasons for a failed path or relay.
const (
	ReasonUnknown         Reason = iota
	ReasonNoRoute                // the network said the address is unreachable
	ReasonRefused                // nothing listens there (TCP RST)
	ReasonTimeout                // no answer in time
	ReasonIntegrity              // the peer's answer failed MESSAGE-INTEGRITY: wrong password
	ReasonRejected               // the peer closed the connection: it does not know our credentials
	ReasonReset                  // the connection broke during the checks
	ReasonProtocol               // the peer sent something that is not valid ICE
	ReasonTURNAuth               // the TURN server refused the credentials
	ReasonTURNUnreachable        // the TURN server could not be reached
	ReasonTURN                   // the TURN server refused a request
	ReasonCanceled               // stopped because another path won or the connect ended
)

var reasonText = [...]string{
	ReasonUnknown:         "failed",
	ReasonNoRoute:         "no route",
	ReasonRefused:         "refused",
	ReasonTimeout:         "timeout",
	ReasonIntegrity:       "integrity check failed (wrong password)",
	ReasonRejected:        "rejected by the peer (wrong ufrag or password?)",
	ReasonReset:           "connection reset",
	ReasonProtocol:        "protocol error",
	ReasonTURNAuth:        "TURN authentication failed",
	ReasonTURNUnreachable: "TURN server unreachable",
	ReasonTURN:            "TURN request refused",
	ReasonCanceled:        "not needed",
}

func (r Reason) String() string {
	if int(r) < len(reasonText) {
		return reasonText[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// PathError is how one candidate pair (a path) failed.
type PathError struct {
	Path   string // e.g. "host 192.0.2.7 → relay 203.0.113.9:61000"
	Reason Reason
	Err    error // the underlying cause
}

func (e *PathError) Error() string {
	if e.Err == nil {
		return e.Path + ": " + e.Reason.String()
	}
	return fmt.Sprintf("%s: %s (%v)", e.Path, e.Reason, e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// ServerError is how gathering from one STUN or TURN server failed. The
// session still works without that server.
type ServerError struct {
	Server string // the URL
	Reason Reason
	Err    error
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("%s: %s (%v)", e.Server, e.Reason, e.Err)
}

func (e *ServerError) Unwrap() error { return e.Err }

// ConnectError is returned by Session.Connect when no path was selected. It
// wraps ErrNoPath or the context's error and lists every path tried.
type ConnectError struct {
	Err     error          // ErrNoPath, context.Canceled or context.DeadlineExceeded
	Paths   []*PathError   // each path tried, in the order they were started
	Servers []*ServerError // STUN/TURN servers that failed while gathering
}

// TriedSimultaneousOpen reports whether a simultaneous-open path (a "so"
// pair between two NATs) was among those tried: if so and none worked,
// the NATs themselves stand in the way (a relay or a port mapping helps).
func (e *ConnectError) TriedSimultaneousOpen() bool {
	for _, p := range e.Paths {
		if strings.HasPrefix(p.Path, soPathPrefix) {
			return true
		}
	}
	return false
}

func (e *ConnectError) Error() string {
	var b strings.Builder
	b.WriteString("ice: connect: ")
	b.WriteString(e.Err.Error())
	if len(e.Paths) == 0 {
		b.WriteString("; no candidate pair to try (no common address family, no candidates, or no relay)")
	} else {
		fmt.Fprintf(&b, "; tried %d path(s): ", len(e.Paths))
		for i, p := range e.Paths {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p.Error())
		}
	}
	for _, s := range e.Servers {
		b.WriteString("; ")
		b.WriteString(s.Error())
	}
	return b.String()
}

func (e *ConnectError) Unwrap() error { return e.Err }
