package natlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peerdrop/peerdrop/internal/testenv"
)

// UPnP runs miniupnpd (Debian package miniupnpd-nftables: UPnP IGD and
// NAT-PMP) on the site's router, serving its LAN, so that hosts that ask
// (peerdrop --portmap) get their listening port forwarded. It works with
// any NAT type. Two things it needs (measured, see
// shared/notes/nat-traversal.md): its WAN address is in a reserved range,
// so it learns its public address by STUN (ext_perform_stun, against the
// lab's coturn, which answers RFC 5780 CHANGE-REQUESTs from a second
// address), and its nftables chains must exist before it starts (table
// inet filter: miniupnpd, prerouting_miniupnpd, postrouting_miniupnpd,
// jumped to from base chains that accept everything else: the lab's own
// rules still filter).
func (s *Site) UPnP() {
	l := s.lab
	l.t.Helper()
	if s.Router == nil {
		l.t.Fatalf("UPnP: an open site has no router")
	}
	bin := testenv.NeedCommand(l.t, "miniupnpd", "the lab's routers map ports with miniupnpd (Debian package miniupnpd-nftables)")
	nft(l.t, s.Router, `table inet filter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`)
	// The STUN answers come from both server addresses and both ports.
	nft(l.t, s.Router, fmt.Sprintf(`insert rule ip natlab input iifname "wan0" ip saddr { %s, %s } udp sport { 3478, 3479 } accept
`, ServerIP, ServerAltIP))
	dir := l.t.TempDir()
	conf := filepath.Join(dir, "miniupnpd.conf")
	text := strings.Join([]string{
		"ext_ifname=wan0",
		"listening_ip=lanbr",
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"secure_mode=yes",
		"system_uptime=yes",
		"ext_perform_stun=yes",
		"ext_stun_host=" + ServerIP.String(),
		"ext_stun_port=3478",
		fmt.Sprintf("uuid=4d696e69-5550-6e50-6c61-62%010d", s.n),
		fmt.Sprintf("allow 1024-65535 10.%d.0.0/24 1024-65535", s.n),
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		l.t.Fatal(err)
	}
	log := &SyncBuffer{}
	cmd := exec.Command("ip", "netns", "exec", s.Router.Name, bin, "-d", "-f", conf, "-P", filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	l.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it deletes its rules
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	// Ready once it listens for NAT-PMP on the LAN side.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			l.t.Fatalf("miniupnpd on %s exited: %s", s.Router.Name, log)
		default:
		}
		if strings.Contains(log.String(), "Listening for NAT-PMP") || strings.Contains(log.String(), "HTTP listening on port") {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("miniupnpd on %s did not start within 10s: %s", s.Router.Name, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
