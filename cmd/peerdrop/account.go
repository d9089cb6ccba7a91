package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
)

// store opens the home's key store and checks it is initialized.
func (a *app) store() (*identity.Store, error) {
	st, err := peerdrop.OpenStore(a.home)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, peerdrop.ErrNotInitialized
		}
		return nil, err
	}
	if !st.Initialized() {
		return nil, peerdrop.ErrNotInitialized
	}
	return st, nil
}

// password reads the archive password: from a file, PEERDROP_PASSWORD, the
// terminal (twice when confirm), or a line of stdin.
func (a *app) password(file string, confirm bool) ([]byte, error) {
	var pw string
	switch {
	case file != "":
		b, err := readBounded(file, 4096)
		if err != nil {
			return nil, err
		}
		pw, _, _ = strings.Cut(string(b), "\n")
	case os.Getenv("PEERDROP_PASSWORD") != "":
		pw = os.Getenv("PEERDROP_PASSWORD")
	default:
		if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(a.stderr, "Password: ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(a.stderr)
			if err != nil {
				return nil, err
			}
			pw = string(b)
			if confirm {
				fmt.Fprint(a.stderr, "Again: ")
				b2, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(a.stderr)
				if err != nil {
					return nil, err
				}
				if string(b2) != pw {
					return nil, usageErr("the passwords differ")
				}
			}
		} else {
			line, err := a.in.ReadString('\n')
			if err != nil && line == "" {
				return nil, usageErr("no password: give --password-file, PEERDROP_PASSWORD or type it")
			}
			pw = line
		}
	}
	pw = strings.TrimRight(pw, "\r\n")
	if len(pw) < 8 {
		return nil, usageErr("the password must have at least 8 characters")
	}
	return []byte(pw), nil
}

// readBounded reads a small file, refusing one larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), max)
	}
	return os.ReadFile(path)
}
