package signaling

import (
	"errors"
	"log/slog"
	"time"

	"github.com/peerdrop/peerdrop/identity"
)

// Config configures a Signaler. Durations state their zero-value defaults.
type Config struct {
	// Device is this device. Required.
	Device *identity.Device
	// Transport carries the items. Required.
	Transport Transport
	// Allow is the contact policy: requests from accounts for which it
	// returns false are dropped (ReasonNotContact). Default: only accounts
	// of watched peers.
	Allow func(identity.AccountID) bool
	// Window is how far a message's timestamp may be from now. Default: 2m.
	Window time.Duration
	// PollBudget is the number of mailbox gets per second the reader may
	// spend on all watched peers together when idle. Default: 10 (one
	// watched device is polled every MinPoll, ten every second, a hundred
	// every 10 s). Mobile apps lower it in the background.
	PollBudget float64
	// MinPoll and MaxPoll bound a peer's poll interval. Defaults: 100ms, 30s.
	MinPoll, MaxPoll time.Duration
	// ActiveFor keeps polling a peer at MinPoll after it sent a request.
	// Default: 30s.
	ActiveFor time.Duration
	// AnswerPoll is how often a waiting request polls for its answer.
	// Default: 50ms.
	AnswerPoll time.Duration
	// AnswerBudget bounds the answer polls per second of all waiting
	// requests together: with more than AnswerBudget×AnswerPoll requests
	// waiting, each polls less often. Default: 20.
	AnswerBudget float64
	// ListenedPoll is how often a watched peer is polled while the
	// Transport notifies puts to its request slots (see Listener): a
	// safety net for lost notifications. Default: 5m.
	ListenedPoll time.Duration
	// RequestTTL bounds how long a request is offered. Default: 60s.
	RequestTTL time.Duration
	// Republish is how often pending requests and answers are put again
	// (DHT nodes come and go). Default: 5s.
	Republish time.Duration
	// Backlog is how many received requests wait for the application
	// before new ones are dropped (ReasonOverload). Default: 64.
	Backlog int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of c (nil: the zero Config) with every
// unset field at its documented default, or an error naming the required
// fields that are missing.
func (c *Config) withDefaults() (Config, error) {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	if cfg.Device == nil || cfg.Transport == nil {
		return cfg, errors.New("signaling: Config needs Device and Transport")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Window, 2*time.Minute)
	def(&cfg.MinPoll, 100*time.Millisecond)
	def(&cfg.MaxPoll, 30*time.Second)
	def(&cfg.ActiveFor, 30*time.Second)
	def(&cfg.AnswerPoll, 50*time.Millisecond)
	def(&cfg.RequestTTL, time.Minute)
	def(&cfg.ListenedPoll, 5*time.Minute)
	def(&cfg.Republish, 5*time.Second)
	if cfg.PollBudget == 0 {
		cfg.PollBudget = 10
	}
	if cfg.AnswerBudget == 0 {
		cfg.AnswerBudget = 20
	}
	if cfg.Backlog == 0 {
		cfg.Backlog = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// KeeperConfig configures a Keeper. Durations state their zero-value
// defaults.
type KeeperConfig struct {
	// Transport carries the list. Required.
	Transport Transport
	// Account signs the list; Device is this device. Required.
	Account *identity.Account
	Device  *identity.Device
	// Name is this device's name in the list.
	Name string
	// Known is the list this device last published or saw (persisted by
	// the application), merged in when the DHT does not return one.
	Known *DeviceList
	// Interval between republishes; it must be well below the DHT nodes'
	// item lifetime (dht.Config.Exp, 2h by default). Default: 30m.
	Interval time.Duration
	// Retry is the first delay after a failed publish; it doubles up to
	// Interval. Default: 5s.
	Retry time.Duration
	// Start, if set, holds the first round back until it is closed (a DHT
	// node still bootstrapping would fail it and wait Retry). Default: nil,
	// at once.
	Start <-chan struct{}
	// Timeout bounds one lookup-and-publish. Default: 30s.
	Timeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of cfg (nil: the zero KeeperConfig) with
// every unset field at its documented default, or an error naming the
// required fields that are missing.
func (cfg *KeeperConfig) withDefaults() (KeeperConfig, error) {
	var c KeeperConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Transport == nil || c.Account == nil || c.Device == nil {
		return c, errors.New("signaling: KeeperConfig needs Transport, Account and Device")
	}
	if c.Device.Account() != c.Account.ID() {
		return c, errors.New("signaling: the device belongs to another account")
	}
	if c.Interval == 0 {
		c.Interval = 30 * time.Minute
	}
	if c.Retry == 0 {
		c.Retry = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
