package peerdrop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/peerdrop/peerdrop/identity"
	"github.com/peerdrop/peerdrop/internal/fsutil"
	"github.com/peerdrop/peerdrop/multidevice"
	"github.com/peerdrop/peerdrop/transfer"
)

// Direction says whether this node sent or received a transfer.
type Direction string

// Directions.
const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// Record is a transfer in the history. For an incoming transfer, State
// AwaitingDecision means the offer waits for this node's decision.
type Record struct {
	ID        transfer.ID        `json:"id"`
	Direction Direction          `json:"direction"`
	Peer      identity.AccountID `json:"peer"`
	// PeerDevice is the sending device of an incoming transfer.
	PeerDevice identity.DeviceID `json:"peer_device,omitzero"`
	Name       string            `json:"name"`
	Size       int64             `json:"size"`
	MediaType  string            `json:"media_type,omitempty"`
	// Files is the number of files of many in one offer (MediaType
	// ManifestType; Size is their total, Path the manifest's file for an
	// outgoing one, the first top-level folder or file for an incoming
	// one once finished).
	Files int `json:"files,omitempty"`
	// Path is the source file (outgoing) or the saved file (incoming,
	// once finished).
	Path string `json:"path,omitempty"`
	// Dir is where an incoming file is received (and its partial kept).
	Dir string `json:"dir,omitempty"`
	// ModTime of an outgoing source when offered: a re-ask is served only
	// if the file is unchanged.
	ModTime time.Time         `json:"mod_time,omitzero"`
	State   multidevice.State `json:"state"`
	Bytes   int64             `json:"bytes"`
	// Devices are the recipient devices of an outgoing transfer.
	Devices []DeviceRecord `json:"devices,omitempty"`
	// Until is when the devices of an outgoing transfer that wait stop
	// being tried again (Config.DeliveryWindow); zero: no retries.
	Until time.Time `json:"until,omitzero"`
	Error string    `json:"error,omitempty"`
	// PartialRemoved says the partial file of an incoming transfer that
	// did not finish was removed (Config.KeepPartials): a Reask starts
	// from the beginning.
	PartialRemoved bool      `json:"partial_removed,omitempty"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
}

// DeviceRecord is one recipient device of an outgoing transfer.
type DeviceRecord struct {
	Device identity.DeviceID `json:"device"`
	Name   string            `json:"name,omitempty"`
	State  multidevice.State `json:"state"`
	Bytes  int64             `json:"bytes"`
	Error  string            `json:"error,omitempty"`
	// Retry is when a waiting device is tried next.
	Retry time.Time `json:"retry,omitzero"`
}

// deviceRecord is the history's form of one device's part: the one
// conversion from multidevice.Device (device is the other way).
func deviceRecord(d multidevice.Device) DeviceRecord {
	dr := DeviceRecord{Device: d.Device, Name: d.Name, State: d.State, Bytes: d.Bytes, Retry: d.Retry}
	if d.Err != nil {
		dr.Error = d.Err.Error()
	}
	return dr
}

// device is a recorded device's part of a file of total bytes.
func (d DeviceRecord) device(total int64) multidevice.Device {
	md := multidevice.Device{Device: d.Device, Name: d.Name, State: d.State, Bytes: d.Bytes, Total: total, Retry: d.Retry}
	if d.Error != "" {
		md.Err = errors.New(d.Error)
	}
	return md
}

// maxRecords bounds the history; the oldest ended transfers go first.
const maxRecords = 1000

// maxRecordsFile bounds the history file read at start.
const maxRecordsFile = 32 << 20

// records is the persisted transfer history (records.json in the home).
type records struct {
	path string
	mu   sync.Mutex
	byID map[recordKey]*Record
}

type recordKey struct {
	id  transfer.ID
	dir Direction
}

// errInterrupted marks transfers that were running when the node stopped.
var errInterrupted = errors.New("interrupted: the node stopped")

// openRecords loads the history of a node that is starting: transfers the
// file says are running were interrupted by the node's last stop.
func openRecords(path string) (*records, error) { return loadRecords(path, true) }

func loadRecords(path string, interrupted bool) (*records, error) {
	r := &records{path: path, byID: make(map[recordKey]*Record)}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxRecordsFile {
		return nil, fmt.Errorf("peerdrop: %s: %d bytes, more than a history can be", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []*Record
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("peerdrop: %s: %w", path, err)
	}
	now := time.Now()
	for _, rec := range list {
		if interrupted && !rec.State.Terminal() {
			interrupt(rec, now)
		}
		r.byID[recordKey{rec.ID, rec.Direction}] = rec
	}
	return r, nil
}

// interrupt updates the record of a transfer that was running when its
// node stopped: the devices of an outgoing one that may still be tried
// (Until) wait; any other part failed.
func interrupt(rec *Record, now time.Time) {
	wait := rec.Direction == Outgoing && now.Before(rec.Until)
	for i := range rec.Devices {
		d := &rec.Devices[i]
		switch {
		case d.State.Terminal():
		case wait:
			if d.State != multidevice.Waiting {
				d.State, d.Error = multidevice.Waiting, errInterrupted.Error()
			}
		default:
			d.State, d.Error = multidevice.Failed, errInterrupted.Error()
			if !rec.Until.IsZero() && !now.Before(rec.Until) {
				d.Error = "not delivered before " + rec.Until.Format(time.DateTime)
			}
		}
	}
	rec.Updated = now
	if rec.Direction == Outgoing && len(rec.Devices) > 0 {
		rec.aggregate()
		return
	}
	rec.State, rec.Error = multidevice.Failed, errInterrupted.Error()
}

// aggregate sets an outgoing record's state, bytes and error from its
// devices'.
func (r *Record) aggregate() {
	devs := make([]multidevice.Device, 0, len(r.Devices))
	for _, d := range r.Devices {
		devs = append(devs, d.device(r.Size))
	}
	a := multidevice.Of(devs)
	r.State, r.Bytes, r.Error = a.State, a.Bytes, ""
	if a.Err != nil {
		r.Error = a.Err.Error()
	}
}

// get returns a copy of a record.
func (r *records) get(id transfer.ID, dir Direction) (Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.byID[recordKey{id, dir}]
	if !ok {
		return Record{}, false
	}
	return copyRecord(rec), true
}

func copyRecord(rec *Record) Record {
	c := *rec
	c.Devices = slices.Clone(rec.Devices)
	return c
}

// update changes (or creates) a record and saves the history.
func (r *records) update(id transfer.ID, dir Direction, f func(*Record)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := recordKey{id, dir}
	rec, ok := r.byID[k]
	if !ok {
		now := time.Now()
		rec = &Record{ID: id, Direction: dir, Created: now}
		r.byID[k] = rec
	}
	f(rec)
	rec.Updated = time.Now()
	r.trim()
	return r.save()
}

// list returns the history, newest first.
func (r *records) list() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.byID))
	for _, rec := range r.byID {
		out = append(out, copyRecord(rec))
	}
	slices.SortFunc(out, func(a, b Record) int { return b.Created.Compare(a.Created) })
	return out
}

func (r *records) trim() {
	for len(r.byID) > maxRecords {
		var oldest *Record
		for _, rec := range r.byID {
			if rec.State.Terminal() && (oldest == nil || rec.Updated.Before(oldest.Updated)) {
				oldest = rec
			}
		}
		if oldest == nil {
			return
		}
		// A transfer gone from the history can no longer resume.
		removePartial(oldest)
		if oldest.Direction == Outgoing && oldest.MediaType == ManifestType {
			os.Remove(oldest.Path) // the manifest of many files, and its sources
			os.Remove(oldest.Path + ".sources")
		}
		delete(r.byID, recordKey{oldest.ID, oldest.Direction})
	}
}

// removePartial deletes the partial file an incoming transfer that did
// not finish keeps for a resume, if any.
func removePartial(rec *Record) {
	if rec.Direction != Incoming || rec.State == multidevice.Finished || rec.Dir == "" || rec.PartialRemoved {
		return
	}
	if err := os.Remove(transfer.PartialPath(rec.Dir, rec.ID)); err == nil || errors.Is(err, os.ErrNotExist) {
		rec.PartialRemoved = true
	}
}

// expirePartials removes the partial files of incoming transfers that
// ended without finishing before cutoff, except those running, and saves
// the history if any was removed. It returns how many were.
func (r *records) expirePartials(cutoff time.Time, running func(transfer.ID) bool) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.byID {
		if rec.PartialRemoved || !rec.State.Terminal() || !rec.Updated.Before(cutoff) || running(rec.ID) {
			continue
		}
		if removePartial(rec); rec.PartialRemoved { // it keeps to unfinished incoming transfers
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, r.save()
}

func (r *records) save() error {
	list := make([]*Record, 0, len(r.byID))
	for _, rec := range r.byID {
		list = append(list, rec)
	}
	slices.SortFunc(list, func(a, b *Record) int { return a.Created.Compare(b.Created) })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(r.path, b); err != nil {
		return fmt.Errorf("peerdrop: save history: %w", err)
	}
	return nil
}

// ReadHistory returns the transfer records kept in home, newest first,
// without opening a Node: for a tool that shows the history while a Node of
// another process may be running (its running transfers show as running;
// with no Node running, as failed "interrupted").
func ReadHistory(home string) ([]Record, error) {
	unlock, err := lockHome(home)
	running := errors.Is(err, ErrHomeInUse)
	if err != nil && !running {
		return nil, err
	}
	if unlock != nil {
		defer unlock.Close()
	}
	r, err := loadRecords(filepath.Join(home, recordsFile), !running)
	if err != nil {
		return nil, err
	}
	return r.list(), nil
}
