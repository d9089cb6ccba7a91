package ice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/pion/stun"
)

// RFC 4571 framing: every STUN message on a peer connection, before the
// switch to raw data, is preceded by its length as a 16-bit big-endian
// integer.
//
//	+--------+--------+----------------------------+
//	| length (uint16) | STUN message (length bytes) |
//	+--------+--------+----------------------------+
//
// Only STUN messages of at most maxFrame bytes are accepted (ours are under
// 150 bytes); anything longer is refused before it is read.
const (
	maxFrame       = 1024
	stunHeaderSize = 20
)

// attrSelected marks the switch indication (PEERDROP-SELECTED, a
// comprehension-optional attribute in the private range of RFC 8489 section
// 18.3). Its value is empty.
const attrSelected stun.AttrType = 0xC0D1

var errFrame = errors.New("bad STUN frame")

// readFrame reads one RFC 4571 frame into buf and returns the message bytes.
// It reads exactly the frame, never beyond it, so that after the switch the
// connection is positioned at the first byte of data.
func readFrame(r io.Reader, buf *[maxFrame]byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n < stunHeaderSize || n > maxFrame {
		return nil, fmt.Errorf("%w: length %d (want %d to %d)", errFrame, n, stunHeaderSize, maxFrame)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:n], nil
}

// appendFrame appends msg with its RFC 4571 length prefix.
func appendFrame(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// decodeMessage parses a STUN message and checks its FINGERPRINT, which
// every ICE message must carry.
func decodeMessage(b []byte) (*stun.Message, error) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return nil, fmt.Errorf("%w: %w", errFrame, err)
	}
	if int(m.Length)+stunHeaderSize != len(b) {
		return nil, fmt.Errorf("%w: length field %d for a %d-byte frame", errFrame, m.Length, len(b))
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		return nil, fmt.Errorf("%w: fingerprint: %w", errFrame, err)
	}
	return m, nil
}

// attr adds a raw attribute.
type attr struct {
	t stun.AttrType
	v []byte
}

func (a attr) AddTo(m *stun.Message) error {
	m.Add(a.t, a.v)
	return nil
}

// checkParams are the ICE attributes of a Binding request.
type checkParams struct {
	priority     uint32
	controlling  bool
	tieBreaker   uint64
	useCandidate bool
}

// newRequest builds a connectivity check: USERNAME "remote:local",
// PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, optionally USE-CANDIDATE,
// MESSAGE-INTEGRITY with the remote password, FINGERPRINT.
func newRequest(localUfrag, remoteUfrag, remotePwd string, p checkParams) (*stun.Message, error) {
	role := stun.AttrICEControlled
	if p.controlling {
		role = stun.AttrICEControlling
	}
	setters := []stun.Setter{
		stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(remoteUfrag + ":" + localUfrag),
		attr{stun.AttrPriority, binary.BigEndian.AppendUint32(nil, p.priority)},
		attr{role, binary.BigEndian.AppendUint64(nil, p.tieBreaker)},
	}
	if p.useCandidate {
		setters = append(setters, attr{stun.AttrUseCandidate, nil})
	}
	setters = append(setters, stun.NewShortTermIntegrity(remotePwd), stun.Fingerprint)
	return stun.Build(setters...)
}

// newSuccess answers req with the address the request came from, signed
// with the local password.
func newSuccess(req *stun.Message, from netip.AddrPort, localPwd string) (*stun.Message, error) {
	return stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		stun.NewShortTermIntegrity(localPwd), stun.Fingerprint,
	)
}

// newErrorResponse answers req with an error code.
func newErrorResponse(req *stun.Message, code stun.ErrorCode, localPwd string) (*stun.Message, error) {
	return stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		code, stun.NewShortTermIntegrity(localPwd), stun.Fingerprint,
	)
}

// newSwitch builds the indication after which the sender's direction of the
// connection carries raw data.
func newSwitch(localUfrag, remoteUfrag, remotePwd string) (*stun.Message, error) {
	return stun.Build(
		stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication),
		stun.NewUsername(remoteUfrag+":"+localUfrag),
		attr{attrSelected, nil},
		stun.NewShortTermIntegrity(remotePwd), stun.Fingerprint,
	)
}

// request is a parsed connectivity check, before its integrity is checked.
type request struct {
	msg          *stun.Message
	localUfrag   string // ours: the first half of USERNAME
	remoteUfrag  string
	priority     uint32
	controlling  bool
	tieBreaker   uint64
	useCandidate bool
}

// parseRequest checks the shape of a Binding request (or switch
// indication, which carries only USERNAME): USERNAME "local:remote" and,
// for requests, PRIORITY and exactly one role attribute.
func parseRequest(m *stun.Message) (request, error) {
	r := request{msg: m}
	var u stun.Username
	if err := u.GetFrom(m); err != nil {
		return r, fmt.Errorf("%w: USERNAME: %w", errFrame, err)
	}
	l, rem, ok := splitUsername(string(u))
	if !ok {
		return r, fmt.Errorf("%w: USERNAME %q is not ufrag:ufrag", errFrame, string(u))
	}
	r.localUfrag, r.remoteUfrag = l, rem
	if m.Type.Class == stun.ClassIndication {
		return r, nil
	}
	prio, err := m.Get(stun.AttrPriority)
	if err != nil || len(prio) != 4 {
		return r, fmt.Errorf("%w: missing or bad PRIORITY", errFrame)
	}
	r.priority = binary.BigEndian.Uint32(prio)
	ctrl, errC := m.Get(stun.AttrICEControlling)
	ctld, errD := m.Get(stun.AttrICEControlled)
	switch {
	case errC == nil && errD != nil && len(ctrl) == 8:
		r.controlling, r.tieBreaker = true, binary.BigEndian.Uint64(ctrl)
	case errD == nil && errC != nil && len(ctld) == 8:
		r.tieBreaker = binary.BigEndian.Uint64(ctld)
	default:
		return r, fmt.Errorf("%w: want exactly one of ICE-CONTROLLING, ICE-CONTROLLED", errFrame)
	}
	r.useCandidate = m.Contains(stun.AttrUseCandidate)
	return r, nil
}

func splitUsername(u string) (local, remote string, ok bool) {
	for i := 0; i < len(u); i++ {
		if u[i] == ':' {
			local, remote = u[:i], u[i+1:]
			return local, remote, isICEString(local, 4, 32) && isICEString(remote, 4, 32)
		}
	}
	return "", "", false
}

// checkIntegrity verifies MESSAGE-INTEGRITY with a short-term password.
func checkIntegrity(m *stun.Message, pwd string) error {
	return stun.NewShortTermIntegrity(pwd).Check(m)
}
