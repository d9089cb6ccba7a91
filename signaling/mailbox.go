package signaling

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"io"

	"golang.org/x/crypto/hkdf"

	"github.com/peerdrop/peerdrop/identity"
)

// Mailboxes. Messages from device F to device T live at BEP 44 items signed
// by a mailbox key that only F and T can compute:
//
//	seed = HKDF-SHA256(X25519(F sealing, T sealing), salt "peerdrop-mailbox-v1", info F || T)
//	mailbox key = Ed25519 key from seed
//
// so the DHT target SHA-1(mailbox public key || salt) is unlinkable to
// either identity, and each direction has its own key. Salts:
//
//	"q0" .. "q3"   request slots: the writer keeps its pending requests to
//	               T in the lowest slots, oldest first, and writes an empty
//	               value into the first unused slot (a tombstone) when the
//	               set shrinks. A reader gets "q0", and the next slot only
//	               while the previous one held a message, so an idle
//	               mailbox costs one get per poll and a burst of up to four
//	               requests is read in one round; a fifth waits for a slot.
//	"r0" .. "r3"   answer slots, kept the same way by the answerer: an
//	               answer stays until a read of the requester's request
//	               slots no longer finds its request (the requester has
//	               it) or the request's TTL passes. The requester reads
//	               "r0", and the next slot while the previous one held an
//	               answer, and hands every answer it finds to the request
//	               waiting for it.
//
// So each ordered device pair uses at most eight items, however many
// messages it exchanges: a DHT node's quota of distinct items per source
// is never used up by normal traffic.
//
// Seq is the time in microseconds, raised to stay above the last seq this
// process wrote, so a newer value always replaces an older one, even after
// a restart.
const slots = 4

var (
	requestSalts = [slots][]byte{[]byte("q0"), []byte("q1"), []byte("q2"), []byte("q3")}
	answerSalts  = [slots][]byte{[]byte("r0"), []byte("r1"), []byte("r2"), []byte("r3")}
)

// mailboxKey derives the key of the mailbox for messages from → to. me is
// one of the two devices; peer is the other's sealing key.
func mailboxKey(me *identity.Device, peer *ecdh.PublicKey, from, to identity.DeviceID) (ed25519.PrivateKey, error) {
	secret, err := me.SealingKey().ECDH(peer)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	info := append(append([]byte(nil), from[:]...), to[:]...)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, []byte("peerdrop-mailbox-v1"), info), seed); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
