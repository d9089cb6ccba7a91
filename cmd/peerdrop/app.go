package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it is the module version (or "devel").
var version = ""

// app is one run of the command: its streams, options and output.
type app struct {
	stdin          io.Reader
	in             *bufio.Reader // stdin, for prompts and passwords
	stdout, stderr io.Writer

	home string
	opt  options
	name string // this user's name (config "name"), for the contact string
	log  *slog.Logger

	ctx    context.Context // canceled by Ctrl-C / SIGTERM
	cancel context.CancelFunc

	outMu sync.Mutex
	above io.Writer // while progress bars are drawn: writes lines above them

	// A command a running recv runs for a client (control.go): remote
	// skips the set-up from flags, environment and config; shared is the
	// recv's Node; router takes the events of its transfers; term and
	// width say whether the client's terminal shows progress bars.
	remote bool
	shared *peerdrop.Node
	router *eventRouter
	term   *bool
	width  int
	offers *offerBook // recv's undecided offers (accept.go)
}

// options are the global options.
type options struct {
	bootstrap string
	stun      string
	turn      string
	turnUser  string
	turnPass  string
	proxy     string
	listen    string
	lan       bool
	global    bool
	portmap   bool
	retryFor  time.Duration
	json      bool
	logLevel  slog.Level // default warn
}

// levelValue is a slog.Level flag (debug, info, warn, error).
type levelValue slog.Level

func (l *levelValue) String() string { return strings.ToLower(slog.Level(*l).String()) }
func (l *levelValue) Type() string   { return "level" }
func (l *levelValue) Set(s string) error {
	var v slog.Level
	if err := v.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("%q: use debug, info, warn or error", s)
	}
	*l = levelValue(v)
	return nil
}

// globalKeys are the options that also come from PEERDROP_* variables and
// the config file.
var globalKeys = []string{"bootstrap", "proxy", "stun", "turn", "turn-user", "turn-pass", "listen", "lan", "global", "portmap", "retry-for", "json", "log-level"}

// configFile is the config file's name in the home.
const configFile = "config"

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, in: bufio.NewReader(stdin), stdout: stdout, stderr: stderr, opt: options{logLevel: slog.LevelWarn},
		log: slog.New(slog.DiscardHandler), ctx: context.Background(), cancel: func() {}}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "peerdrop",
		Short: "Send files to every device of a contact, with no server in the data path",
		Long: `peerdrop sends files from your device to every device of a contact. Devices
find each other through the BitTorrent DHT (your own node on a LAN or a site with
no internet, or the public DHT with --global), connect directly over TCP or through
a TURN relay, and authenticate both ends with TLS 1.3.

Try it with no set-up: peerdrop demo

Global options come from flags, then PEERDROP_* environment variables
(PEERDROP_HOME, PEERDROP_BOOTSTRAP, PEERDROP_TURN_USER, ...), then HOME/config
("key = value" lines; the keys are the option names without dashes in front).

Exit status: 0 ok, 1 error, 2 usage, 3 refused, 4 canceled, 5 failed (no device
received the file), 6 unknown contact/device/transfer, 7 not initialized,
130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.remote {
				return nil // the running recv's options hold
			}
			return a.setup(cmd)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q", args[0])
			}
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })

	pf := root.PersistentFlags()
	pf.StringVar(&a.home, "home", "", "home directory: keys, contacts, history, config (default ~/.peerdrop)")
	pf.StringVar(&a.opt.bootstrap, "bootstrap", "", "DHT nodes to start from, `HOST:PORT,...` (peerdrop dht-node runs one)")
	pf.StringVar(&a.opt.proxy, "proxy", "", "signaling proxies, for networks that block UDP, `URL,...` (peerdrop-proxy://HOST:PORT#PIN as printed by dht-node --proxy, or https://HOST:PORT)")
	pf.StringVar(&a.opt.stun, "stun", "", "STUN server(s) that tell this device its public address, for direct connections between two NATs, `URL,...` (stun:HOST:PORT)")
	pf.StringVar(&a.opt.turn, "turn", "", "TURN server(s) for relayed connections, `URL,...` (turn:HOST:PORT?transport=tcp)")
	pf.StringVar(&a.opt.turnUser, "turn-user", "", "TURN user name")
	pf.StringVar(&a.opt.turnPass, "turn-pass", "", "TURN password")
	pf.StringVar(&a.opt.listen, "listen", "", "local `ADDR:PORT` for the DHT (UDP) and direct connections (TCP) (default every address, any port)")
	pf.BoolVar(&a.opt.lan, "lan", false, "discover DHT nodes on the local network by multicast")
	pf.BoolVar(&a.opt.global, "global", false, "also use the public BitTorrent DHT routers and --portmap (off: nothing leaves your network unless asked)")
	pf.BoolVar(&a.opt.portmap, "portmap", false, "ask the router to forward the listening port (UPnP IGD, NAT-PMP), for direct connections from behind any NAT")
	pf.DurationVar(&a.opt.retryFor, "retry-for", 24*time.Hour, "how long a device that does not answer (offline) is tried again, while peerdrop recv runs on this home; 0: never")
	pf.BoolVar(&a.opt.json, "json", false, "print one JSON object per line on stdout, for scripts")
	pf.Var((*levelValue)(&a.opt.logLevel), "log-level", "log detail on stderr: debug, info, warn, error")

	root.AddCommand(a.initCommand(), a.idCommand(), a.contactCommand(), a.deviceCommand(),
		a.sendCommand(), a.recvCommand(), a.acceptCommand(), a.refuseCommand(), a.resumeCommand(), a.transfersCommand(),
		a.dhtNodeCommand(), a.demoCommand(), a.versionCommand())
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs makes positional-argument errors usage errors, everywhere.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageErr("%s: %v", cmd.CommandPath(), err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// setup resolves the global options (flag, then environment, then config
// file), the logger and the interrupt context, before any command runs.
func (a *app) setup(cmd *cobra.Command) error {
	flags := cmd.Flags()
	if !flags.Changed("home") {
		if h := os.Getenv("PEERDROP_HOME"); h != "" {
			a.home = h
		} else if a.home == "" {
			dir, err := os.UserHomeDir()
			if err != nil {
				return withHint(exitUsage, fmt.Errorf("no home directory: %w", err), "set --home or PEERDROP_HOME")
			}
			a.home = filepath.Join(dir, ".peerdrop")
		}
	}
	if abs, err := filepath.Abs(a.home); err == nil {
		a.home = abs
	}
	conf, err := readConfig(filepath.Join(a.home, configFile))
	if err != nil {
		return err
	}
	a.name = conf["name"]
	for _, key := range globalKeys {
		f := flags.Lookup(key)
		if f == nil || f.Changed || cmd.LocalNonPersistentFlags().Lookup(key) != nil {
			continue // dht-node's own --proxy is what it serves, not a global option
		}
		env := "PEERDROP_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
		v, ok := os.LookupEnv(env)
		from := env
		if !ok {
			v, ok = conf[key]
			from = filepath.Join(a.home, configFile) + ": " + key
		}
		if ok {
			if err := f.Value.Set(v); err != nil {
				return usageErr("%s: %v", from, err)
			}
		}
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: a.opt.logLevel}))
	a.ctx, a.cancel = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return nil
}

// readConfig reads "key = value" lines ('#' starts a comment). Keys are
// the global options and "name".
func readConfig(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	known := map[string]bool{"name": true}
	for _, k := range globalKeys {
		known[k] = true
	}
	conf := make(map[string]string)
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || !known[key] {
			return nil, usageErr("%s:%d: %q is not a known \"key = value\" line (keys: name, %s)", path, line, text, strings.Join(globalKeys, ", "))
		}
		conf[key] = value
	}
	return conf, sc.Err()
}

// exit prints err (with its hint) and returns the exit status.
func (a *app) exit(err error) int {
	a.cancel()
	if err == nil {
		return exitOK
	}
	var re *remoteExit
	if errors.As(err, &re) {
		return re.code // the running recv printed the command's output and error
	}
	code, hint := classify(err, a.home)
	fmt.Fprintf(a.stderr, "peerdrop: %s\n", termSafe(err.Error()))
	if hint != "" {
		fmt.Fprintf(a.stderr, "hint: %s\n", termSafe(hint))
	}
	if a.opt.json {
		a.emitJSON(map[string]any{"event": "error", "error": err.Error(), "hint": hint, "exit": code})
	}
	return code
}

// emitJSON writes v as one line on stdout.
func (a *app) emitJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"event": "error", "error": err.Error()})
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	a.stdout.Write(append(jsonSafe(b), '\n'))
}

// printf writes human output on stdout (not in --json mode).
func (a *app) printf(format string, args ...any) {
	if a.opt.json {
		return
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	fmt.Fprintf(a.stdout, format, termSafeArgs(args)...)
}

// notef writes a human status line on stderr (not in --json mode).
func (a *app) notef(format string, args ...any) {
	if a.opt.json {
		return
	}
	a.outMu.Lock()
	defer a.outMu.Unlock()
	w := a.stderr
	if a.above != nil {
		w = a.above
	}
	fmt.Fprintf(w, format, termSafeArgs(args)...)
}
