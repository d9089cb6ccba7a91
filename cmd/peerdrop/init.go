package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
)

func defaultUserName() string {
	if u, err := user.Current(); err == nil {
		if u.Name != "" {
			return strings.TrimSpace(strings.Split(u.Name, ",")[0])
		}
		return u.Username
	}
	return ""
}

func defaultDeviceName() string {
	h, _ := os.Hostname()
	return h
}

func (a *app) initCommand() *cobra.Command {
	var name, device string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create your account and this device; prints your contact string",
		Long: `init creates an account and this device's keys in the home directory, and
prints the contact string to give to the people who will send you files (they run
peerdrop contact add with it). To add another device of yours to the account, use
peerdrop device export here and peerdrop device import there instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				name = a.name
			}
			if name == "" {
				name = defaultUserName()
			}
			name = identity.CleanName(name, identity.MaxContactName)
			acct, dev, err := peerdrop.Init(a.home, identity.CleanName(device, 64))
			if errors.Is(err, identity.ErrExists) {
				return withHint(exitError, fmt.Errorf("%s already holds an account", a.home), "see peerdrop id; use another --home for a second identity")
			}
			if err != nil {
				return err
			}
			if err := writeConfigTemplate(filepath.Join(a.home, configFile), name); err != nil {
				return err
			}
			a.name = name
			cs := identity.ContactString(acct, name)
			if a.opt.json {
				a.emitJSON(map[string]any{"event": "init", "account": acct, "device": dev, "device_name": device, "name": name, "contact": cs, "home": a.home})
				return nil
			}
			a.printf("Account  %s\nDevice   %s (%s)\nHome     %s\n\n", acct, device, dev, a.home)
			a.printf("Your contact string; give it to the people who will send you files:\n\n  %s\n\n", cs)
			a.printf("Next: add theirs (peerdrop contact add CONTACT-STRING), then peerdrop recv or peerdrop send.\n")
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "your name, as your contacts will see it (default: config name, or your login name)")
	c.Flags().StringVar(&device, "device", defaultDeviceName(), "this device's name, as shown to your contacts")
	return c
}

// writeConfigTemplate writes a commented config file naming the user,
// unless one exists.
func writeConfigTemplate(path, name string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	text := `# peerdrop configuration: one "key = value" per line. Flags and PEERDROP_*
# environment variables take precedence. Keys: name and the global options.
name = ` + name + `
# bootstrap = 192.0.2.10:6882
# lan = true
# listen = 0.0.0.0:6881
# stun = stun:stun.example.org:3478
# turn = turn:turn.example.org:3478?transport=tcp
# turn-user = alice
# turn-pass = secret
# global = false
# portmap = false
# log-level = warn
`
	return os.WriteFile(path, []byte(text), 0o600)
}
