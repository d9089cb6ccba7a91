package mobile

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// chunky is a SourceFile that returns at most 7 bytes a call, or a bad
// answer.
type chunky struct {
	data []byte
	bad  bool // return more than asked
}

func (c chunky) Name() string         { return "c.bin" }
func (c chunky) Size() int64          { return int64(len(c.data)) }
func (c chunky) ModTimeMillis() int64 { return 0 }
func (c chunky) Close() error         { return nil }
func (c chunky) ReadAt(off int64, n int) ([]byte, error) {
	if c.bad {
		return make([]byte, n+1), nil
	}
	if off >= int64(len(c.data)) {
		return nil, nil
	}
	end := min(int64(len(c.data)), off+int64(min(n, 7)))
	return c.data[off:end], nil
}

// TestAppSource: a SourceFile's short reads are joined, the end is
// io.EOF, and a SourceFile that returns more than asked is an error.
func TestAppSource(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100)
	s := appSource{chunky{data: data}}
	if err := iotest.TestReader(io.NewSectionReader(s, 0, int64(len(data))), data); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 20)
	if n, err := s.ReadAt(p, int64(len(data))-5); n != 5 || !errors.Is(err, io.EOF) {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	fi, _ := s.Stat()
	if fi.Name() != "c.bin" || fi.Size() != 1000 || !fi.Mode().IsRegular() || !fi.ModTime().IsZero() {
		t.Fatalf("stat %v %v %v %v", fi.Name(), fi.Size(), fi.Mode(), fi.ModTime())
	}
	if _, err := (appSource{chunky{data: data, bad: true}}).ReadAt(p, 0); err == nil {
		t.Fatal("a SourceFile returning more than asked was taken")
	}
	n := NewNode(&Config{Home: t.TempDir()})
	defer n.Close()
	if _, err := n.open("content://x"); err == nil {
		t.Fatal("a URI opened without an opener")
	}
}
