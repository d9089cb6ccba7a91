package signaling

import (
	"bytes"
	"compress/flate"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"github.com/peerdrop/peerdrop/identity"
)

// Sealed message, version 1. The whole sealed form is one BEP 44 value, so
// at most MaxSealed bytes (a 996-byte string bencodes to 1000 bytes).
//
//	offset size
//	0      1    version = 1
//	1      32   ephemeral X25519 public key
//	33     n+16 XChaCha20-Poly1305(inner), AD = bytes 0..33
//
// key (32) and nonce (24) = HKDF-SHA256(X25519(ephemeral, recipient
// sealing key), salt = ephemeral || recipient sealing key, info
// "peerdrop-seal-v1"): a fresh key for every message.
//
// Inner message, signed by the sender device:
//
//	0      1    kind (1 request, 2 answer)
//	1      1    flags (bit 0: payload DEFLATE-compressed, preset dictionary)
//	2      16   message ID (random)
//	18     8    time, Unix milliseconds
//	26     16   reply-to message ID (zero in a request)
//	42     32   recipient device ID
//	74     2    certificate length c (≤ identity.MaxCertSize)
//	76     c    sender's device certificate (DER, signed by its account)
//	76+c   2    payload length p
//	78+c   p    payload
//	78+c+p 64   Ed25519 signature by the certificate's device key over
//	            "peerdrop-signal-v1\x00" || bytes 0 .. 78+c+p
const (
	MaxSealed       = 996
	sealVersion     = 1
	sealOverhead    = 1 + 32 + chacha20poly1305.Overhead
	innerFixed      = 76 + 2 + ed25519.SignatureSize
	maxPayloadBytes = 8 << 10 // after decompression
	flagDeflate     = 1
)

var signContext = []byte("peerdrop-signal-v1\x00")

// Kind is what a message is for.
type Kind uint8

// Message kinds.
const (
	KindRequest Kind = 1
	KindAnswer  Kind = 2
)

// MessageID identifies a message; answers name the request they answer.
type MessageID [16]byte

// Message is an opened (decrypted and verified) sealed message.
type Message struct {
	Kind    Kind
	ID      MessageID
	ReplyTo MessageID // zero in a request
	Time    time.Time
	From    *identity.DeviceCert // the sender device, verified against its account
	To      identity.DeviceID
	Payload []byte
}

// payloadDict primes DEFLATE with what ICE descriptions are made of, so a
// typical one compresses to well under half its size.
var payloadDict = []byte("a=ice-ufrag:a=ice-pwd: typ relay raddr  rport  typ srflx tcptype active\n" +
	"a=candidate:1 1 tcp 2105524479 192.168. 9 typ host tcptype passive\na=candidate:2 1 tcp 2128609279 ")

// seal builds, signs, compresses (when it helps) and encrypts a message
// from dev to the recipient device with the given sealing key.
func seal(dev *identity.Device, to identity.DeviceID, toSeal *ecdh.PublicKey, kind Kind, id, replyTo MessageID, now time.Time, payload []byte) ([]byte, error) {
	if len(payload) > maxPayloadBytes {
		return nil, fmt.Errorf("%w: payload %d bytes", ErrTooLarge, len(payload))
	}
	body, flags := payload, byte(0)
	if z := deflate(payload); len(z) < len(payload) {
		body, flags = z, flagDeflate
	}
	cert := dev.Cert().Raw
	inner := make([]byte, 0, innerFixed+len(cert)+len(body))
	inner = append(inner, byte(kind), flags)
	inner = append(inner, id[:]...)
	inner = binary.BigEndian.AppendUint64(inner, uint64(now.UnixMilli()))
	inner = append(inner, replyTo[:]...)
	inner = append(inner, to[:]...)
	inner = binary.BigEndian.AppendUint16(inner, uint16(len(cert)))
	inner = append(inner, cert...)
	inner = binary.BigEndian.AppendUint16(inner, uint16(len(body)))
	inner = append(inner, body...)
	inner = append(inner, dev.Sign(append(append([]byte(nil), signContext...), inner...))...)
	if n := sealOverhead + len(inner); n > MaxSealed {
		return nil, fmt.Errorf("%w: sealed message would be %d bytes (limit %d; payload %d bytes, %d after compression)",
			ErrTooLarge, n, MaxSealed, len(payload), len(body))
	}

	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	aead, nonce, err := sealKey(eph, toSeal, eph.PublicKey().Bytes(), toSeal.Bytes())
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, sealOverhead+len(inner))
	out = append(out, sealVersion)
	out = append(out, eph.PublicKey().Bytes()...)
	return aead.Seal(out, nonce, inner, out[:33]), nil
}

func sealKey(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, ephPub, recipientPub []byte) (aeadCipher, []byte, error) {
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, nil, err
	}
	salt := append(append([]byte(nil), ephPub...), recipientPub...)
	var km [chacha20poly1305.KeySize + chacha20poly1305.NonceSizeX]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte("peerdrop-seal-v1")), km[:]); err != nil {
		return nil, nil, err
	}
	aead, err := chacha20poly1305.NewX(km[:chacha20poly1305.KeySize])
	return aead, km[chacha20poly1305.KeySize:], err
}

type aeadCipher interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}

// open decrypts and verifies a sealed message addressed to dev. It checks
// everything that needs no state: size, decryption, structure, the
// sender's certificate chain (to the account named in it), the signature,
// the recipient and the time window. Replays and the contact policy are
// the caller's (Signaler's) to check.
func open(dev *identity.Device, sealed []byte, now time.Time, window time.Duration) (*Message, error) {
	if len(sealed) > MaxSealed {
		return nil, drop(ReasonOversized, "%d bytes", len(sealed))
	}
	if len(sealed) < sealOverhead+innerFixed || sealed[0] != sealVersion {
		return nil, drop(ReasonGarbled, "not a version %d sealed message", sealVersion)
	}
	ephPub, err := ecdh.X25519().NewPublicKey(sealed[1:33])
	if err != nil {
		return nil, drop(ReasonGarbled, "bad ephemeral key")
	}
	aead, nonce, err := sealKey(dev.SealingKey(), ephPub, sealed[1:33], dev.SealingKey().PublicKey().Bytes())
	if err != nil {
		return nil, drop(ReasonGarbled, "key agreement: %v", err)
	}
	inner, err := aead.Open(nil, nonce, sealed[33:], sealed[:33])
	if err != nil {
		return nil, drop(ReasonGarbled, "does not decrypt for this device")
	}
	return parseInner(dev.ID(), inner, now, window)
}

func parseInner(me identity.DeviceID, inner []byte, now time.Time, window time.Duration) (*Message, error) {
	if len(inner) < innerFixed {
		return nil, drop(ReasonGarbled, "inner message too short")
	}
	m := &Message{Kind: Kind(inner[0])}
	flags := inner[1]
	copy(m.ID[:], inner[2:18])
	ms := int64(binary.BigEndian.Uint64(inner[18:26]))
	copy(m.ReplyTo[:], inner[26:42])
	copy(m.To[:], inner[42:74])
	certLen := int(binary.BigEndian.Uint16(inner[74:76]))
	if certLen > identity.MaxCertSize || 76+certLen+2+ed25519.SignatureSize > len(inner) {
		return nil, drop(ReasonGarbled, "certificate length %d", certLen)
	}
	cert := inner[76 : 76+certLen]
	p := 76 + certLen
	bodyLen := int(binary.BigEndian.Uint16(inner[p : p+2]))
	if p+2+bodyLen+ed25519.SignatureSize != len(inner) {
		return nil, drop(ReasonGarbled, "payload length %d does not match the message", bodyLen)
	}
	body := inner[p+2 : p+2+bodyLen]
	sig := inner[p+2+bodyLen:]
	if m.Kind != KindRequest && m.Kind != KindAnswer || flags&^flagDeflate != 0 {
		return nil, drop(ReasonGarbled, "kind %d, flags %#x", m.Kind, flags)
	}
	// The certificate must be signed by the account it names; which account
	// that may be is the caller's policy.
	dc, err := identity.ParseDeviceCert(cert)
	if err != nil {
		return nil, drop(ReasonBadChain, "%v", err)
	}
	if _, err := identity.VerifyDeviceCert(cert, dc.Account, now); err != nil {
		return nil, drop(ReasonBadChain, "%v", err)
	}
	signed := append(append([]byte(nil), signContext...), inner[:len(inner)-ed25519.SignatureSize]...)
	if !ed25519.Verify(dc.SigningKey(), signed, sig) {
		return nil, drop(ReasonForged, "signature does not verify under device %s", dc.Device.Short())
	}
	m.From = dc
	if m.To != me {
		return nil, drop(ReasonMisaddressed, "for device %s", m.To.Short())
	}
	m.Time = time.UnixMilli(ms)
	if d := now.Sub(m.Time); d > window || d < -window {
		return nil, drop(ReasonStale, "sent %s, now %s", m.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if flags&flagDeflate != 0 {
		if m.Payload, err = inflate(body); err != nil {
			return nil, drop(ReasonGarbled, "payload: %v", err)
		}
	} else {
		m.Payload = append([]byte(nil), body...)
	}
	return m, nil
}

func deflate(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriterDict(&b, flate.BestCompression, payloadDict)
	_, _ = w.Write(p)
	_ = w.Close()
	return b.Bytes()
}

// inflate decompresses at most maxPayloadBytes: a small message cannot
// expand into a large allocation.
func inflate(z []byte) ([]byte, error) {
	r := flate.NewReaderDict(bytes.NewReader(z), payloadDict)
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxPayloadBytes+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxPayloadBytes {
		return nil, errors.New("decompresses beyond the limit")
	}
	return out, nil
}

func newMessageID() MessageID {
	var id MessageID
	_, _ = rand.Read(id[:])
	return id
}
