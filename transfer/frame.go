package transfer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Stream preamble, sent once by each side before its first frame:
//
//	magic    "PDXF"   4 bytes
//	version  0x01     1 byte
const (
	helloMagic = "PDXF"
	// Version is the protocol version this package speaks.
	Version   = 1
	helloSize = 5
)

// Frame layout:
//
//	type     uint8
//	length   uint32, big endian: payload length
//	payload  length bytes
//
// The length is checked against the type's maximum before anything is
// allocated: MaxDataFrame for DATA, MaxControlFrame for all others.
const (
	frameHeaderSize = 5

	// MaxControlFrame bounds every frame but DATA.
	MaxControlFrame = 64 << 10
	// MaxDataFrame bounds a DATA frame's payload.
	MaxDataFrame = 1 << 20
)

// Frame types. Each payload is described beside its parseX / appendX
// function in messages.go.
type frameType uint8

const (
	frameHeader frameType = 0x01 // sender → receiver: the offer
	frameGo     frameType = 0x02 // receiver → sender: accept, with resume offset
	frameRefuse frameType = 0x03 // receiver → sender: refuse, with reason
	frameCancel frameType = 0x04 // either way: stop now, with code and reason
	frameData   frameType = 0x05 // sender → receiver: file bytes
	frameEnd    frameType = 0x06 // sender → receiver: digest of the whole file
	frameAck    frameType = 0x07 // receiver → sender: digest verified or not
)

var frameNames = map[frameType]string{
	frameHeader: "HEADER", frameGo: "GO", frameRefuse: "REFUSE", frameCancel: "CANCEL",
	frameData: "DATA", frameEnd: "END", frameAck: "ACK",
}

func (t frameType) String() string {
	if s, ok := frameNames[t]; ok {
		return s
	}
	return fmt.Sprintf("frame(%#02x)", uint8(t))
}

func maxPayload(t frameType) (int, error) {
	switch t {
	case frameData:
		return MaxDataFrame, nil
	case frameHeader, frameGo, frameRefuse, frameCancel, frameEnd, frameAck:
		return MaxControlFrame, nil
	}
	return 0, protoErrorf("unknown frame type %#02x", uint8(t))
}

func appendHello(b []byte) []byte { return append(append(b, helloMagic...), Version) }

// readHello reads and checks the peer's preamble.
func readHello(r io.Reader) error {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if string(b[:4]) != helloMagic {
		return protoErrorf("not a peerdrop transfer stream (magic %q)", b[:4])
	}
	if b[4] != Version {
		return &VersionError{Got: b[4]}
	}
	return nil
}

func appendFrameHeader(b []byte, t frameType, n int) []byte {
	b = append(b, byte(t))
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// readFrame reads one frame. Its payload is read into buf when it fits
// (buf is reused across calls), else into a new slice bounded by the
// type's maximum.
func readFrame(r *bufio.Reader, buf []byte) (frameType, []byte, error) {
	var h [frameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	t := frameType(h[0])
	n := binary.BigEndian.Uint32(h[1:])
	limit, err := maxPayload(t)
	if err != nil {
		return 0, nil, err
	}
	if n > uint32(limit) {
		return 0, nil, protoErrorf("%v frame of %d bytes exceeds limit %d", t, n, limit)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	p := buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return t, p, nil
}
