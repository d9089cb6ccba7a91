package transfer

import (
	"log/slog"
	"time"
)

// Config tunes a transfer. Nil means all defaults; a zero field means its
// default.
type Config struct {
	// Digest is the algorithm the sender announces. Zero means BLAKE3.
	// Receivers accept either algorithm.
	Digest DigestAlgorithm

	// ChunkSize is the DATA frame payload the sender writes. Zero means
	// 256 KiB; at most MaxDataFrame.
	ChunkSize int

	// DecisionTimeout bounds how long a sender waits for GO or REFUSE
	// after its header (a person may be deciding). Zero means 10 minutes.
	DecisionTimeout time.Duration

	// IdleTimeout fails a transfer in which no bytes moved in either
	// direction for this long while bytes were expected. Zero means 30 s.
	IdleTimeout time.Duration

	// LingerTimeout bounds how long a side that ended the protocol waits
	// for the peer to close first, so its last frame is not lost to a
	// reset. Zero means 2 s.
	LingerTimeout time.Duration

	// ProgressInterval is the minimum time between progress events. Zero
	// means 250 ms.
	ProgressInterval time.Duration

	// OnEvent, if set, receives state changes and throttled progress. It is
	// called from the transfer's goroutines, never with a lock held, one
	// call at a time per transfer; it must not block for long.
	OnEvent func(Event)

	// Logger receives debug logs. Nil means discard.
	Logger *slog.Logger
}

func (c *Config) withDefaults() *Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.Digest == 0 {
		d.Digest = BLAKE3
	}
	if d.ChunkSize <= 0 {
		d.ChunkSize = 256 << 10
	}
	d.ChunkSize = min(d.ChunkSize, MaxDataFrame)
	if d.DecisionTimeout <= 0 {
		d.DecisionTimeout = 10 * time.Minute
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = 30 * time.Second
	}
	if d.LingerTimeout <= 0 {
		d.LingerTimeout = 2 * time.Second
	}
	if d.ProgressInterval <= 0 {
		d.ProgressInterval = 250 * time.Millisecond
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &d
}
