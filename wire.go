package peerdrop

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/peerdrop/peerdrop/ice"
	"github.com/peerdrop/peerdrop/transfer"
)

// Payloads carried by sealed signaling messages between two Nodes.
//
// Requests (from the device that will be ICE-controlling and TLS client):
//
//	'F' ICE description              connect: I offer you a file
//	'R' 16-byte transfer ID, ICE     re-ask: send me that transfer again
//
// Answers:
//
//	'A' ICE description              accepted: connect
//	'N' 1-byte code, UTF-8 text      no (text at most 200 bytes)
//
// The ICE description is parsed by ice.ParseDescription, which bounds it.
const (
	kindFile   = 'F'
	kindReask  = 'R'
	kindAccept = 'A'
	kindNo     = 'N'

	maxNoText = 200
)

// NoCode says why a device answered no.
type NoCode uint8

// Codes of a no answer.
const (
	NoBusy       NoCode = 1 // too many transfers at once
	NoUnknown    NoCode = 2 // re-ask: no such transfer here
	NoNotAllowed NoCode = 3 // re-ask: the asker is not the transfer's recipient
	NoChanged    NoCode = 4 // re-ask: the file changed or is gone
	NoShutdown   NoCode = 5 // the node is closing
)

var noText = map[NoCode]string{NoBusy: "busy", NoUnknown: "unknown transfer", NoNotAllowed: "not allowed",
	NoChanged: "the file changed or is gone", NoShutdown: "shutting down"}

func (c NoCode) String() string {
	if s, ok := noText[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// NoError is a device's no answer to a request.
type NoError struct {
	Code NoCode
	Text string // the peer's words, sanitized
}

func (e *NoError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("peer said no: %s (%s)", e.Code, e.Text)
	}
	return "peer said no: " + e.Code.String()
}

var errBadPayload = errors.New("peerdrop: bad signaling payload")

type request struct {
	kind byte
	id   transfer.ID // re-ask only
	desc ice.Description
	// single asks for a link of its own (ALPN peerdrop/1 only), bundle
	// for a link with streams (peerdrop/2) even with LinkIdle negative;
	// not sent: the TLS handshake negotiates it.
	single, bundle bool
}

func (r request) marshal() ([]byte, error) {
	d, err := r.desc.MarshalText()
	if err != nil {
		return nil, err
	}
	b := []byte{r.kind}
	if r.kind == kindReask {
		b = append(b, r.id[:]...)
	}
	return append(b, d...), nil
}

func parseRequest(b []byte) (request, error) {
	var r request
	if len(b) < 1 {
		return r, errBadPayload
	}
	r.kind, b = b[0], b[1:]
	switch r.kind {
	case kindFile:
	case kindReask:
		if len(b) < len(r.id) {
			return r, errBadPayload
		}
		copy(r.id[:], b)
		b = b[len(r.id):]
	default:
		return r, fmt.Errorf("%w: kind %q", errBadPayload, r.kind)
	}
	d, err := ice.ParseDescription(b)
	if err != nil {
		return r, fmt.Errorf("%w: %v", errBadPayload, err)
	}
	r.desc = d
	return r, nil
}

func acceptAnswer(d ice.Description) ([]byte, error) {
	t, err := d.MarshalText()
	if err != nil {
		return nil, err
	}
	return append([]byte{kindAccept}, t...), nil
}

func noAnswer(code NoCode, text string) []byte {
	if len(text) > maxNoText {
		text = text[:maxNoText]
	}
	return append([]byte{kindNo, byte(code)}, text...)
}

// parseAnswer returns the peer's description, or a *NoError.
func parseAnswer(b []byte) (ice.Description, error) {
	if len(b) < 1 {
		return ice.Description{}, errBadPayload
	}
	switch b[0] {
	case kindAccept:
		d, err := ice.ParseDescription(b[1:])
		if err != nil {
			return d, fmt.Errorf("%w: %v", errBadPayload, err)
		}
		return d, nil
	case kindNo:
		if len(b) < 2 || len(b) > 2+maxNoText {
			return ice.Description{}, errBadPayload
		}
		text := []rune{}
		for _, r := range string(b[2:]) {
			if r == utf8.RuneError || r < 0x20 || r == 0x7f {
				r = '?'
			}
			text = append(text, r)
		}
		return ice.Description{}, &NoError{Code: NoCode(b[1]), Text: string(text)}
	}
	return ice.Description{}, fmt.Errorf("%w: kind %q", errBadPayload, b[0])
}
