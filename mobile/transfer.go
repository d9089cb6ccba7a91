package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop"
	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/transfer"
)

// Transfer is a file being sent to every device of a contact. Its ID is
// known at once, so the app can match the listeners' callbacks to it
// before the contact's devices are found.
type Transfer struct {
	id   transfer.ID
	name string

	mu       sync.Mutex
	out      *peerdrop.OutgoingTransfer
	canceled bool
	err      error // set when it failed before any device was tried
	done     chan struct{}
}

// ID is the transfer ID every device and callback uses.
func (t *Transfer) ID() string { return t.id.String() }

// Cancel stops the transfer on every device.
func (t *Transfer) Cancel() {
	t.mu.Lock()
	t.canceled = true
	out := t.out
	t.mu.Unlock()
	if out != nil {
		out.Cancel()
	}
}

// CancelDevice stops the transfer to one device (a device ID from
// OnDevice); the others go on.
func (t *Transfer) CancelDevice(deviceID string) error {
	var dev identity.DeviceID
	if err := dev.UnmarshalText([]byte(deviceID)); err != nil {
		return err
	}
	t.mu.Lock()
	out := t.out
	t.mu.Unlock()
	if out == nil {
		return errors.New("peerdrop: the contact's devices are not known yet")
	}
	return out.CancelDevice(dev)
}

// IsDone reports whether every device's part ended (or the send failed
// before reaching any).
func (t *Transfer) IsDone() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Await blocks until the transfer ended, at most timeoutMillis (≤ 0: no
// bound), and returns nil when at least one device received and verified
// the file. Not for the UI thread. (Not "Wait": Java's Object.wait is
// final.)
func (t *Transfer) Await(timeoutMillis int64) error {
	var timeout <-chan time.Time
	if timeoutMillis > 0 {
		tm := time.NewTimer(time.Duration(timeoutMillis) * time.Millisecond)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case <-t.done:
	case <-timeout:
		return context.DeadlineExceeded
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	return t.out.Wait(context.Background())
}

// StatusJSON is the aggregate and each device's state, as JSON:
// {"id", "name", "state", "bytes", "total", "error", "devices": [{"device",
// "name", "state", "bytes", "relayed", "error"}]}.
func (t *Transfer) StatusJSON() []byte {
	t.mu.Lock()
	out, ferr := t.out, t.err
	t.mu.Unlock()
	st := map[string]any{"id": t.id, "name": t.name, "state": "connecting"}
	if ferr != nil {
		st["state"], st["error"] = "failed", ferr.Error()
	}
	if out != nil {
		a := out.Status()
		st["state"], st["bytes"], st["total"] = a.State, a.Bytes, a.Total
		if a.Err != nil {
			st["error"] = a.Err.Error()
		}
		var devs []map[string]any
		for _, d := range out.Devices() {
			dm := map[string]any{"device": d.Device, "name": d.Name, "state": d.State, "bytes": d.Bytes, "relayed": d.Relayed, "link": d.Link}
			if d.Err != nil {
				dm["error"] = d.Err.Error()
			}
			devs = append(devs, dm)
		}
		st["devices"] = devs
	}
	b, _ := json.Marshal(st)
	return b
}

// SendFile offers the file at path, or at a URI the SourceOpener opens
// ("content://…"), to every device of contact (a name, account ID or
// contact string). It checks the contact and the file, then
// returns at once: finding the devices (up to 30s) and the transfers run
// in the background and report through the listeners; if no device can
// be found, the transfer fails with a state change.
func (n *Node) SendFile(contact, path string) (*Transfer, error) {
	fi, err := n.stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("peerdrop: %s is not a regular file", path)
	}
	return n.send(contact, []string{path}, transfer.SanitizeName(fi.Name()))
}

// SendFiles offers files and folders, given as a JSON array of paths (and
// of URIs of files the SourceOpener opens)
// ("[\"/sdcard/DCIM/Camera\", \"/data/…/report.pdf\"]"), to every device of
// contact in one offer: each device accepts or refuses it once and
// receives every file in a new folder of its own (see SendFile for the
// rest; progress carries the files' total, a "file" state per file).
func (n *Node) SendFiles(contact, pathsJSON string) (*Transfer, error) {
	var paths []string
	if err := json.Unmarshal([]byte(pathsJSON), &paths); err != nil {
		return nil, fmt.Errorf("peerdrop: paths must be a JSON array of strings: %w", err)
	}
	if len(paths) == 0 {
		return nil, errors.New("peerdrop: no path to send")
	}
	var first fs.FileInfo
	for i, p := range paths {
		fi, err := n.stat(p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = fi
		}
	}
	name := transfer.SanitizeName(first.Name())
	if len(paths) > 1 {
		name = fmt.Sprintf("%s and %d more", name, len(paths)-1)
	}
	return n.send(contact, paths, name)
}

func (n *Node) send(contact string, paths []string, name string) (*Transfer, error) {
	st, err := peerdrop.OpenStore(n.cfg.Home)
	if err != nil {
		return nil, err
	}
	c, err := st.FindContact(contact)
	if err != nil {
		return nil, err
	}
	t := &Transfer{id: transfer.NewID(), name: name, done: make(chan struct{})}
	node, ctx, err := n.begin()
	if err != nil {
		return nil, err
	}
	go func() {
		defer n.wg.Done()
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := node.SendFilesWithID(fctx, t.id, c.ID, paths)
		cancel()
		t.mu.Lock()
		t.out, t.err = out, err
		canceled := t.canceled
		t.mu.Unlock()
		if err != nil {
			close(t.done)
			n.failed(t.id, peerdrop.Outgoing, t.name, err)
			return
		}
		if canceled {
			out.Cancel()
		}
		<-out.Done()
		close(t.done)
	}()
	return t, nil
}
