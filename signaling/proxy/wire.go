package proxy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/peerdrop/peerdrop/signaling"
)

// Wire limits.
const (
	maxBody       = 4 << 10  // a request body
	maxLine       = 4 << 10  // a line of a listen stream
	maxListenBody = 16 << 10 // a listen request: 256 targets in hex, and room
)

// wireItem is an item on the wire (see doc.go).
type wireItem struct {
	K    []byte `json:"k"`
	Salt []byte `json:"salt"`
	Seq  int64  `json:"seq"`
	V    []byte `json:"v"`
	Sig  []byte `json:"sig"`
}

var errBadItem = errors.New("bad item")

func toWire(it signaling.Item) wireItem {
	return wireItem{K: it.Key[:], Salt: it.Salt, Seq: it.Seq, V: it.Value, Sig: it.Sig[:]}
}

// item checks a wire item's sizes and signature.
func (w wireItem) item() (signaling.Item, error) {
	if len(w.K) != 32 || len(w.Sig) != 64 || len(w.Salt) > 64 || len(w.V) > 1000 {
		return signaling.Item{}, fmt.Errorf("%w: field sizes", errBadItem)
	}
	it := signaling.Item{Salt: w.Salt, Seq: w.Seq, Value: w.V}
	if it.Salt == nil {
		it.Salt = []byte{}
	}
	if it.Value == nil {
		it.Value = []byte{}
	}
	copy(it.Key[:], w.K)
	copy(it.Sig[:], w.Sig)
	if !it.Verify() {
		return signaling.Item{}, fmt.Errorf("%w: signature or size", errBadItem)
	}
	return it, nil
}

// decodeItem reads a JSON item and checks it.
func decodeItem(b []byte) (signaling.Item, error) {
	var w wireItem
	if err := json.Unmarshal(b, &w); err != nil {
		return signaling.Item{}, fmt.Errorf("%w: %v", errBadItem, err)
	}
	return w.item()
}

// listenRequest is the body of POST /v1/listen.
type listenRequest struct {
	Targets []string `json:"targets"`
}

// decodeTargets reads hex targets, at most max of them, without duplicates.
func decodeTargets(hexes []string, max int) ([][20]byte, error) {
	if len(hexes) > max {
		return nil, fmt.Errorf("%d targets, at most %d", len(hexes), max)
	}
	seen := make(map[[20]byte]bool, len(hexes))
	out := make([][20]byte, 0, len(hexes))
	for _, h := range hexes {
		var t [20]byte
		if len(h) != 40 {
			return nil, fmt.Errorf("target %.50q: want 40 hex digits", h)
		}
		if _, err := hex.Decode(t[:], []byte(h)); err != nil {
			return nil, fmt.Errorf("target %.50q: want 40 hex digits", h)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func encodeTargets(ts [][20]byte) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = hex.EncodeToString(t[:])
	}
	return out
}

// streamLine is one line of a listen stream.
type streamLine struct {
	Listening *[]string `json:"listening,omitempty"`
	Item      *wireItem `json:"item,omitempty"`
}
