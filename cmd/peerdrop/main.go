// Command peerdrop sends files from one person's device to every device of
// another person, with no server in the data path: devices find each other
// through the BitTorrent DHT (a node of your own on a LAN or a site with no
// internet, or the public DHT when asked with --global), connect directly
// over TCP or through a TURN relay, and authenticate both ends with TLS 1.3.
//
// Set up, then send:
//
//	peerdrop demo                       # everything on loopback, in seconds
//	peerdrop init --name Alice          # prints your contact string
//	peerdrop contact add CONTACT        # the string your friend printed
//	peerdrop recv                       # wait for files (asks before each)
//	peerdrop send Bob report.pdf        # to every device of Bob's
//
// Commands: init, id, contact (add, list, remove), device (export, import,
// revoke), send, recv, accept, refuse, resume, transfers, dht-node, demo,
// version. Run "peerdrop help COMMAND" for each one's flags.
//
// Global options come from flags, then PEERDROP_* environment variables
// (PEERDROP_BOOTSTRAP for --bootstrap, PEERDROP_TURN_USER for --turn-user),
// then the config file HOME/config ("key = value" lines, the keys being the
// option names), in that order of precedence.
//
// Exit status:
//
//	0    success (send: every file received and verified by at least one device)
//	1    error (I/O, network set-up, a home in use by another peerdrop)
//	2    usage (an unknown command or flag, a bad option value)
//	3    refused (every device refused the file; recv --once: you refused)
//	4    canceled (by the other side)
//	5    failed (no device received the file: none reachable, or all failed)
//	6    unknown contact, device or transfer
//	7    not initialized (run peerdrop init)
//	8    queued (send: no device has the file yet; the devices that did not
//	     answer are tried again for --retry-for while peerdrop recv runs)
//	130  interrupted (Ctrl-C): running transfers are canceled, partial files kept
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

func main() {
	stop := profile(os.Getenv("PEERDROP_CPUPROFILE"))
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// profile writes a CPU profile of the whole process to path, if set (a
// debugging aid: PEERDROP_CPUPROFILE=send.prof peerdrop send …; read it
// with go tool pprof).
func profile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerdrop: PEERDROP_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "peerdrop: PEERDROP_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// run executes the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.Execute()
	return a.exit(err)
}
