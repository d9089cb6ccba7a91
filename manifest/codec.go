package manifest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

const (
	magic   = "PDMF"
	version = 1

	flagDir  = 0x01
	flagExec = 0x02
)

// ErrFormat is a manifest that does not decode.
var ErrFormat = errors.New("manifest: malformed")

// Encode writes the manifest (version 1, see the package comment).
func (m *Manifest) Encode(w io.Writer) error {
	if len(m.Entries) > MaxEntries {
		return fmt.Errorf("manifest: %d entries, more than %d", len(m.Entries), MaxEntries)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(magic)
	bw.WriteByte(version)
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(len(m.Entries)))
	bw.Write(b[:4])
	for _, e := range m.Entries {
		if len(e.Path) == 0 || len(e.Path) > MaxPathBytes {
			return fmt.Errorf("manifest: path of %d bytes", len(e.Path))
		}
		var flags byte
		if e.Dir {
			flags |= flagDir
		}
		if e.Exec {
			flags |= flagExec
		}
		bw.WriteByte(flags)
		binary.BigEndian.PutUint16(b[:2], uint16(len(e.Path)))
		bw.Write(b[:2])
		bw.WriteString(e.Path)
		binary.BigEndian.PutUint64(b[:], uint64(e.Size))
		bw.Write(b[:])
		binary.BigEndian.PutUint64(b[:], uint64(e.ModTime.UnixNano()))
		bw.Write(b[:])
	}
	return bw.Flush()
}

// readEntry reads one entry; path is a buffer of MaxPathBytes.
func readEntry(br *bufio.Reader, path []byte) (Entry, error) {
	var fixed [16]byte
	flags, err := br.ReadByte()
	if err != nil {
		return Entry{}, err
	}
	if flags&^(flagDir|flagExec) != 0 {
		return Entry{}, fmt.Errorf("unknown flags %#x", flags)
	}
	if _, err := io.ReadFull(br, fixed[:2]); err != nil {
		return Entry{}, err
	}
	pl := int(binary.BigEndian.Uint16(fixed[:2]))
	if pl == 0 || pl > MaxPathBytes {
		return Entry{}, fmt.Errorf("path of %d bytes", pl)
	}
	if _, err := io.ReadFull(br, path[:pl]); err != nil {
		return Entry{}, err
	}
	if !utf8.Valid(path[:pl]) {
		return Entry{}, errors.New("path is not UTF-8")
	}
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		return Entry{}, err
	}
	e := Entry{Path: string(path[:pl]), Dir: flags&flagDir != 0, Exec: flags&flagExec != 0,
		ModTime: time.Unix(0, int64(binary.BigEndian.Uint64(fixed[8:])))}
	size := binary.BigEndian.Uint64(fixed[:8])
	if size > MaxTotalBytes || (e.Dir && size != 0) {
		return Entry{}, fmt.Errorf("size %d", size)
	}
	e.Size = int64(size)
	return e, nil
}

// Decode reads a manifest of at most max bytes (MaxEncodedBytes when max
// is zero or more), checking every count and length before allocating
// for it. It checks the encoding only; Plan checks the paths.
func Decode(r io.Reader, max int64) (*Manifest, error) {
	if max <= 0 || max > MaxEncodedBytes {
		max = MaxEncodedBytes
	}
	lr := &io.LimitedReader{R: r, N: max + 1}
	br := bufio.NewReader(lr)
	var hdr [9]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if string(hdr[:4]) != magic {
		return nil, fmt.Errorf("%w: not a manifest", ErrFormat)
	}
	if hdr[4] != version {
		return nil, fmt.Errorf("%w: version %d (this peerdrop reads %d)", ErrFormat, hdr[4], version)
	}
	n := binary.BigEndian.Uint32(hdr[5:])
	if n == 0 || n > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries (1..%d)", ErrFormat, n, MaxEntries)
	}
	// Each entry takes at least 20 bytes: do not trust n further than
	// the bytes allowed.
	if int64(n)*20 > max {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", ErrFormat, n, max)
	}
	m := &Manifest{Entries: make([]Entry, 0, n)}
	var total int64
	path := make([]byte, MaxPathBytes)
	for i := range int(n) {
		e, err := readEntry(br, path)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrFormat, i, err)
		}
		if total += e.Size; total > MaxTotalBytes {
			return nil, fmt.Errorf("%w: more than %d bytes in all", ErrFormat, int64(MaxTotalBytes))
		}
		m.Entries = append(m.Entries, e)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing bytes", ErrFormat)
	}
	if lr.N == 0 {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrFormat, max)
	}
	return m, nil
}
