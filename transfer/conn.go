package transfer

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one side's view of the stream: serialized writes (the hello
// goes out in front of the first frame), an idle watchdog that closes the
// stream when no byte moved for too long while bytes were expected, and an
// idempotent close.
type conn struct {
	rw io.ReadWriteCloser
	br *bufio.Reader

	wmu       sync.Mutex
	helloSent bool
	wbuf      []byte

	start     time.Time
	lastMove  atomic.Int64 // ns since start of the last byte moved
	idle      atomic.Int64 // watchdog timeout in ns; 0 = not watching
	timer     *time.Timer
	timedOut  atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func newConn(rw io.ReadWriteCloser) *conn {
	c := &conn{rw: rw, start: time.Now()}
	c.br = bufio.NewReaderSize(activity{c}, 64<<10)
	c.timer = time.AfterFunc(time.Hour, c.check)
	c.timer.Stop()
	return c
}

// activity touches the watchdog on every byte read.
type activity struct{ c *conn }

func (a activity) Read(p []byte) (int, error) {
	n, err := a.c.rw.Read(p)
	if n > 0 {
		a.c.touch()
	}
	return n, err
}

func (c *conn) touch() { c.lastMove.Store(int64(time.Since(c.start))) }

// watch arms the watchdog: if no byte moves for d, the stream is closed
// and later errors read as ErrTimeout.
func (c *conn) watch(d time.Duration) {
	c.touch()
	c.idle.Store(int64(d))
	c.timer.Reset(d)
}

// unwatch disarms the watchdog (while a person decides, say).
func (c *conn) unwatch() {
	c.idle.Store(0)
	c.timer.Stop()
}

func (c *conn) check() {
	d := c.idle.Load()
	if d == 0 {
		return
	}
	quiet := int64(time.Since(c.start)) - c.lastMove.Load()
	if quiet >= d {
		c.timedOut.Store(true)
		c.close()
		return
	}
	c.timer.Reset(time.Duration(d - quiet))
}

// close closes the stream once and stops the watchdog.
func (c *conn) close() error {
	c.closeOnce.Do(func() {
		c.unwatch()
		c.closeErr = c.rw.Close()
	})
	return c.closeErr
}

// ioErr maps a stream error after a watchdog close to ErrTimeout.
func (c *conn) ioErr(err error) error {
	if c.timedOut.Load() {
		return ErrTimeout
	}
	return err
}

func (c *conn) write(b []byte) error {
	for len(b) > 0 {
		n, err := c.rw.Write(b)
		if n > 0 {
			c.touch()
		}
		if err != nil {
			return c.ioErr(err)
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// writeFrame writes a control frame (with the hello first, once).
func (c *conn) writeFrame(t frameType, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	if !c.helloSent {
		b = appendHello(b)
	}
	b = appendFrameHeader(b, t, len(payload))
	b = append(b, payload...)
	c.wbuf = b
	if err := c.write(b); err != nil {
		return err
	}
	c.helloSent = true
	return nil
}

// writeData writes a DATA frame whose payload is buf[frameHeaderSize:];
// buf's first frameHeaderSize bytes are overwritten with the frame header,
// so header and payload leave in one write.
func (c *conn) writeData(buf []byte) error {
	appendFrameHeader(buf[:0], frameData, len(buf)-frameHeaderSize)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.helloSent {
		return errors.New("transfer: DATA before hello")
	}
	return c.write(buf)
}

// readFrame reads the next frame, growing *buf up to the frame maximum.
func (c *conn) readFrame(buf *[]byte) (frameType, []byte, error) {
	t, p, err := readFrame(c.br, *buf)
	if err != nil {
		return 0, nil, c.ioErr(err)
	}
	if cap(p) > cap(*buf) {
		*buf = p[:cap(p)]
	}
	return t, p, nil
}

// lingerClose waits up to d for the peer to close first (done is closed
// when our reader saw EOF), then closes. A side that sent the last frame
// of the protocol uses it, so a close cannot turn into a reset that
// destroys that frame in flight.
func (c *conn) lingerClose(done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	c.close()
}
