package mobile

// Config configures a Node. Strings are empty and numbers zero for their
// defaults.
type Config struct {
	// Home is the app's private directory for keys, contacts and history
	// (Android: context.filesDir + "/peerdrop"; iOS: Application Support).
	// Required.
	Home string
	// DownloadDir receives accepted files when Accept gets no path.
	// Default: Home/downloads.
	DownloadDir string
	// DeviceName names this device to the account's contacts (used by
	// CreateIdentity and ImportIdentity; informational here).
	DeviceName string

	// Bootstrap lists DHT nodes to start from: "HOST:PORT,HOST:PORT".
	// Default: none.
	Bootstrap string
	// LAN discovers DHT nodes on the local network by multicast.
	LAN bool
	// Global also uses the public BitTorrent DHT routers. Default: off.
	Global bool
	// PortMapping asks the Wi-Fi router to forward the listening port
	// (UPnP IGD, NAT-PMP), for direct connections from behind any NAT;
	// NetworkChanged looks for the new network's router. Default: off.
	PortMapping bool
	// Listen is the local "IP:PORT" for the DHT (UDP) and direct
	// connections (TCP). Default: every address, any port.
	Listen string

	// Proxy lists signaling proxies, "peerdrop-proxy://HOST:PORT#PIN,..."
	// or "https://HOST:PORT" ("peerdrop dht-node --proxy" prints the
	// address): signaling over TLS beside the DHT, for networks that block
	// UDP. In the background the proxy's one TLS connection replaces the
	// DHT's polling (see the package documentation for the trade).
	// Default: none.
	Proxy string

	// StunURL lists STUN servers, "stun:HOST:PORT,...": they tell this
	// device its public address, for direct connections between two NATs
	// (TCP simultaneous open). Default: none.
	StunURL string

	// TurnURL lists TURN servers, "turn:HOST:PORT?transport=tcp,...",
	// sharing TurnUser and TurnPass. Default: none (direct paths only).
	TurnURL  string
	TurnUser string
	TurnPass string

	// AutoAcceptMaxBytes, if positive, accepts offers of at most this size
	// whose media type starts with one of AutoAcceptTypes ("image/,video/";
	// empty: any type) into DownloadDir without asking (no OnOffer).
	AutoAcceptMaxBytes int64
	AutoAcceptTypes    string

	// ForegroundPollBudget and BackgroundPollBudget are the DHT gets per
	// second spent polling for incoming requests (see SetForeground).
	// Defaults: 10 and 0.5.
	ForegroundPollBudget float64
	BackgroundPollBudget float64
	// BackgroundContactRefreshSeconds is how often contacts' device lists
	// are fetched again in the background (the foreground's: 60 s); their
	// changes are also notified where the DHT nodes or the proxy listen.
	// Default: 600.
	BackgroundContactRefreshSeconds int64
	// DeliveryWindowSeconds is how long a device of the contact that does
	// not answer (offline) is tried again while this Node runs (across
	// restarts of the app; an app suspended in the background tries when
	// it runs again). The device's Progress says "waiting" meanwhile.
	// Default: 86400 (a day); negative: never.
	DeliveryWindowSeconds int64
	// LogLevel is the least level passed to the LogListener: -4 debug,
	// 0 info, 4 warn, 8 error. Default: 0 (info).
	LogLevel int
}

// NewConfig returns a Config with the app's directories.
func NewConfig(home, downloadDir string) *Config {
	return &Config{Home: home, DownloadDir: downloadDir}
}

// withDefaults returns a copy of c (nil: the zero Config) with the
// defaults this package applies itself; the others are the root package's
// (peerdrop.Config), applied by Start.
func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.ForegroundPollBudget <= 0 {
		d.ForegroundPollBudget = 10
	}
	if d.BackgroundContactRefreshSeconds <= 0 {
		d.BackgroundContactRefreshSeconds = 600
	}
	if d.BackgroundPollBudget <= 0 {
		d.BackgroundPollBudget = 0.5
	}
	return d
}
