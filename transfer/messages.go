package transfer

import (
	"encoding/binary"
	"unicode/utf8"
)

// Limits on HEADER fields, checked when parsing.
const (
	MaxNameLength      = 4096 // bytes, before sanitizing
	MaxMediaTypeLength = 255
	MaxMetadataEntries = 32
	MaxMetadataKey     = 64
	MaxMetadataValue   = 1024
	MaxReasonLength    = 1024
)

// reader decodes the fields of one payload; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = protoErrorf(format, args...)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) uint8 {
	if b := r.bytes(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.bytes(2, what); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.bytes(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// str reads a UTF-8 string of n bytes, at most max.
func (r *reader) str(n, max int, what string) string {
	if n > max {
		r.fail("%s: %d bytes exceeds limit %d", what, n, max)
		return ""
	}
	b := r.bytes(n, what)
	if r.err == nil && !utf8.Valid(b) {
		r.fail("%s: not valid UTF-8", what)
	}
	return string(b)
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}

func appendStr16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// HEADER payload:
//
//	id          16 bytes   transfer ID
//	size        uint64     file size in bytes (≤ 2^63-1)
//	digest      uint8      digest algorithm (see DigestAlgorithm)
//	name        uint16 n, n bytes UTF-8       (n ≤ MaxNameLength)
//	media type  uint8 n, n bytes UTF-8        (may be empty)
//	metadata    uint8 count (≤ MaxMetadataEntries), then per entry, in
//	            strictly increasing key order (so the encoding is canonical):
//	            uint8 n, n bytes key (1..MaxMetadataKey)
//	            uint16 n, n bytes value (≤ MaxMetadataValue)
func appendHeader(b []byte, o *Offer) []byte {
	b = append(b, o.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Size))
	b = append(b, byte(o.Digest))
	b = appendStr16(b, o.Name)
	b = append(b, byte(len(o.MediaType)))
	b = append(b, o.MediaType...)
	b = append(b, byte(len(o.Metadata)))
	for _, k := range sortedKeys(o.Metadata) {
		b = append(b, byte(len(k)))
		b = append(b, k...)
		b = appendStr16(b, o.Metadata[k])
	}
	return b
}

func parseHeader(p []byte) (*Offer, error) {
	r := &reader{b: p}
	o := &Offer{}
	copy(o.ID[:], r.bytes(len(o.ID), "header id"))
	size := r.u64("header size")
	if size > 1<<63-1 {
		r.fail("header size %d out of range", size)
	}
	o.Size = int64(size)
	o.Digest = DigestAlgorithm(r.u8("header digest"))
	if r.err == nil && !o.Digest.valid() {
		r.fail("unknown digest algorithm %d", o.Digest)
	}
	o.Name = r.str(int(r.u16("header name")), MaxNameLength, "header name")
	o.MediaType = r.str(int(r.u8("header media type")), MaxMediaTypeLength, "header media type")
	n := int(r.u8("header metadata"))
	if n > MaxMetadataEntries {
		r.fail("header metadata: %d entries exceeds limit %d", n, MaxMetadataEntries)
	}
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		if o.Metadata == nil {
			o.Metadata = make(map[string]string, n)
		}
		k := r.str(int(r.u8("metadata key")), MaxMetadataKey, "metadata key")
		v := r.str(int(r.u16("metadata value")), MaxMetadataValue, "metadata value")
		if r.err != nil {
			break
		}
		if k == "" {
			r.fail("metadata: empty key")
		} else if i > 0 && k <= prev {
			r.fail("metadata: key %q duplicate or out of order", k)
		}
		prev = k
		o.Metadata[k] = v
	}
	if err := r.done("header"); err != nil {
		return nil, err
	}
	return o, nil
}

// GO payload:
//
//	offset  uint64   resume from this byte (0 = from the start; ≤ size)
func appendGo(b []byte, offset int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(offset)) }

func parseGo(p []byte) (int64, error) {
	r := &reader{b: p}
	off := r.u64("go offset")
	if r.err == nil && off > 1<<63-1 {
		r.fail("go offset out of range")
	}
	return int64(off), r.done("go")
}

// REFUSE payload:
//
//	reason  uint16 n, n bytes UTF-8 (≤ MaxReasonLength)
func appendRefuse(b []byte, reason string) []byte {
	return appendStr16(b, clip(reason, MaxReasonLength))
}

func parseRefuse(p []byte) (string, error) {
	r := &reader{b: p}
	s := r.str(int(r.u16("refuse reason")), MaxReasonLength, "refuse reason")
	return s, r.done("refuse")
}

// CANCEL payload:
//
//	code    uint8   CancelCode
//	reason  uint16 n, n bytes UTF-8 (≤ MaxReasonLength)
func appendCancel(b []byte, code CancelCode, reason string) []byte {
	return appendStr16(append(b, byte(code)), clip(reason, MaxReasonLength))
}

func parseCancel(p []byte) (CancelCode, string, error) {
	r := &reader{b: p}
	code := CancelCode(r.u8("cancel code"))
	s := r.str(int(r.u16("cancel reason")), MaxReasonLength, "cancel reason")
	return code, s, r.done("cancel")
}

// END payload:
//
//	digest  uint8 algorithm (must equal the header's), uint8 n, n bytes (n = the algorithm's size)
func appendEnd(b []byte, alg DigestAlgorithm, sum []byte) []byte {
	b = append(b, byte(alg), byte(len(sum)))
	return append(b, sum...)
}

func parseEnd(p []byte) (DigestAlgorithm, []byte, error) {
	r := &reader{b: p}
	alg := DigestAlgorithm(r.u8("end digest"))
	n := int(r.u8("end digest length"))
	if r.err == nil && (!alg.valid() || n != alg.Size()) {
		r.fail("end: bad digest (algorithm %d, %d bytes)", alg, n)
	}
	sum := r.bytes(n, "end digest")
	return alg, sum, r.done("end")
}

// ACK payload:
//
//	status   uint8: 0 = verified and saved, 1 = digest mismatch, 2 = failed after END
//	message  uint16 n, n bytes UTF-8 (≤ MaxReasonLength)
type ackStatus uint8

const (
	ackVerified ackStatus = 0
	ackMismatch ackStatus = 1
	ackFailed   ackStatus = 2
)

func appendAck(b []byte, st ackStatus, msg string) []byte {
	return appendStr16(append(b, byte(st)), clip(msg, MaxReasonLength))
}

func parseAck(p []byte) (ackStatus, string, error) {
	r := &reader{b: p}
	st := ackStatus(r.u8("ack status"))
	if r.err == nil && st > ackFailed {
		r.fail("ack: unknown status %d", st)
	}
	msg := r.str(int(r.u16("ack message")), MaxReasonLength, "ack message")
	return st, msg, r.done("ack")
}

// clip bounds s to max bytes at a character boundary.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
