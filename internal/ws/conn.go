package ws

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"
)

// Conn limits and timeouts.
const (
	// DefaultMaxMessage is the largest message a Conn reads unless told
	// otherwise: wire.MaxFrameSize, the largest message Sotto sends.
	DefaultMaxMessage = 1 << 20

	// readBufferSize is what a Conn reads at once: many small messages,
	// or a large one in few system calls. A Conn is a client's, or a
	// test's, so it can afford a buffer; a server uses a Parser directly.
	readBufferSize = 16 << 10

	// keepWriteBuffer is the largest write buffer a Conn keeps for its
	// next write; a larger one, left by a large message or batch, is
	// dropped so that a connection does not hold it for good.
	keepWriteBuffer = 64 << 10

	// CloseTimeout bounds how long Close waits for the peer's close frame
	// (reading and discarding messages meanwhile) before it closes the
	// TCP connection anyway: a peer that stopped reading must not hold a
	// closing connection open.
	CloseTimeout = 5 * time.Second

	// controlWriteTimeout bounds the write of a frame Conn sends on its
	// own (a pong, a close): the socket buffer takes it at once unless the
	// peer stopped reading.
	controlWriteTimeout = 5 * time.Second
)

// ErrClosed is the error of a write after the Conn sent its close frame,
// and of Ping when the connection closes before the pong.
var ErrClosed = errors.New("ws: connection closed")

// CloseError is the error of [Conn.Read] once the peer sent a close frame:
// its status code (StatusNoStatus if it had none) and reason.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	s := "ws: closed by peer with status " + e.Code.String()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// CloseStatus returns the status code of the close frame behind err, a
// [*CloseError], or StatusNone if err is not one.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return StatusNone
}

// message is a data message parsed but not yet returned by Read.
type message struct {
	op   Opcode
	data []byte
}

// Conn is a blocking WebSocket connection over a net.Conn: the client of
// tests, the load tool and command-line clients ([Dial]), or a simple
// server ([NewConn] after [Upgrade]). An event-driven server uses [Parser]
// and [AppendFrame] instead.
//
// One goroutine may Read while others Write, WriteBatch, Ping and Close.
// Read answers pings and close frames itself; Ping needs a Read running to
// see its pong.
//
// Lock order: rmu, then wmu or pmu.
type Conn struct {
	nc        net.Conn
	role      Role
	done      chan struct{} // closed by CloseNow
	closeOnce sync.Once
	closeErr  error
	onFrame   func(Opcode, []byte) error // c.handle, made once

	rmu     sync.Mutex // held by Read, and by Close waiting for the peer's close
	p       Parser
	pending []byte    // bytes read with the handshake, fed first
	rbuf    []byte    // read buffer, made by the first read
	queue   []message // messages parsed but not returned yet
	rerr    error     // what every Read returns once the queue is empty
	discard bool      // Close is waiting for the peer's close: drop messages

	// Writes combine: a writer appends its frames to wbuf; if no write
	// is under way it becomes the leader and writes all of wbuf in one
	// system call, while writers that arrive meanwhile append behind it
	// and wait. Frames leave in the order their writers appended them.
	wmu       sync.Mutex
	wbuf      []byte        // frames appended but not yet being written
	spare     []byte        // the buffer of the last write, for reuse
	queued    uint64        // frames appended so far (sequence numbers)
	written   uint64        // frames written so far
	writing   bool          // a leader is writing
	wake      chan struct{} // closed when a write ends; made by a waiter
	werr      error         // the write error that made the connection unusable
	closeSent bool

	pmu      sync.Mutex
	pings    map[uint64]chan struct{} // by ping payload, closed by its pong
	nextPing uint64
}

// NewConn makes a Conn of nc, which has completed its opening handshake:
// buffered holds the bytes already read past the handshake (from [Upgrade]
// or [Dial]), and maxMessage is the largest message Read accepts
// (0 means DefaultMaxMessage). The Conn owns nc.
func NewConn(nc net.Conn, buffered []byte, role Role, maxMessage int) *Conn {
	if maxMessage == 0 {
		maxMessage = DefaultMaxMessage
	}
	c := &Conn{
		nc:      nc,
		role:    role,
		done:    make(chan struct{}),
		p:       NewParser(role, maxMessage),
		pending: buffered,
	}
	c.onFrame = c.handle
	return c
}

// NetConn returns the underlying connection, for its addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Read returns the next text or binary message; the data is the caller's.
// It answers pings with pongs. When the peer sends a close frame, Read
// answers it (if Close has not sent one), closes the connection, and
// returns a [*CloseError]; on a protocol violation it sends a close frame
// with the status of the [*ProtocolError], closes the connection and
// returns the error. Errors are final: every later Read returns the same
// one, except a context error (ctx's deadline is the read deadline), after
// which the connection is still usable.
func (c *Conn) Read(ctx context.Context) (Opcode, []byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = message{}
			c.queue = c.queue[1:]
			if len(c.queue) == 0 {
				c.queue = nil
			}
			return m.op, m.data, nil
		}
		if c.rerr != nil {
			return 0, nil, c.rerr
		}
		if err := c.readOnce(ctx); err != nil {
			return 0, nil, err
		}
	}
}

// readOnce reads from the connection once and parses what it read. It
// returns only context errors; other errors go to c.rerr. c.rmu is held.
func (c *Conn) readOnce(ctx context.Context) error {
	if c.pending != nil {
		b := c.pending
		c.pending = nil
		c.feed(b)
		return nil
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, readBufferSize)
	}
	deadline, _ := ctx.Deadline()
	_ = c.nc.SetReadDeadline(deadline)
	stop := watch(ctx, func() { _ = c.nc.SetReadDeadline(aLongTimeAgo()) })
	n, err := c.nc.Read(c.rbuf)
	stop()
	if n > 0 {
		c.feed(c.rbuf[:n])
	}
	switch {
	case err == nil || c.rerr != nil:
	case contextError(ctx, err) != nil:
		if len(c.queue) > 0 {
			return nil // a message came with the deadline
		}
		return contextError(ctx, err)
	default:
		c.fail(fmt.Errorf("ws: read: %w", err))
	}
	return nil
}

// feed parses b. c.rmu is held.
func (c *Conn) feed(b []byte) {
	err := c.p.Feed(b, c.onFrame)
	if err == nil {
		return
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		_ = c.sendClose(pe.Code, pe.Reason) // best effort: the peer broke the protocol
	}
	c.fail(err)
}

// handle is the parser's callback. c.rmu is held.
func (c *Conn) handle(op Opcode, data []byte) error {
	switch op {
	case OpText, OpBinary:
		if !c.discard {
			c.queue = append(c.queue, message{op, bytes.Clone(data)})
		}
	case OpPing:
		if err := c.writeControl(context.Background(), OpPong, data); err != nil && !errors.Is(err, ErrClosed) {
			return fmt.Errorf("ws: answer ping: %w", err)
		}
	case OpPong:
		if len(data) == 8 {
			id := binary.BigEndian.Uint64(data)
			c.pmu.Lock()
			if ch, ok := c.pings[id]; ok {
				close(ch)
				delete(c.pings, id)
			}
			c.pmu.Unlock()
		}
	case OpClose:
		code, reason := ParseClose(data)
		c.rerr = &CloseError{Code: code, Reason: reason}
		// Echo the status (RFC 6455 section 5.5.1); the close handshake
		// is then complete.
		_ = c.sendClose(code, "")
		c.CloseNow()
	}
	return nil
}

// fail makes err the error of every later Read, if none is yet, and
// closes the connection. c.rmu is held.
func (c *Conn) fail(err error) {
	if c.rerr == nil {
		c.rerr = err
	}
	c.CloseNow()
}

// Write sends one text or binary message in one frame (masked if c is a
// client). Text must be valid UTF-8. It is safe for concurrent use, and
// concurrent writes share system calls: the frames of writers that arrive
// while a write is under way leave together in the next one. ctx's
// deadline is the write deadline; a write that fails or is cancelled
// leaves the connection unusable (a frame may be half written), so Write
// then closes it.
func (c *Conn) Write(ctx context.Context, op Opcode, data []byte) error {
	if err := checkData(op, data); err != nil {
		return err
	}
	return c.write(ctx, func(b []byte) []byte { return c.appendFrame(b, op, data) })
}

// WriteBatch sends each of msgs as a message of type op, all in one write
// to the connection: the frames of a batch reach the network together.
// Otherwise it is like Write.
func (c *Conn) WriteBatch(ctx context.Context, op Opcode, msgs [][]byte) error {
	for _, m := range msgs {
		if err := checkData(op, m); err != nil {
			return err
		}
	}
	return c.write(ctx, func(b []byte) []byte {
		for _, m := range msgs {
			b = c.appendFrame(b, op, m)
		}
		return b
	})
}

func checkData(op Opcode, data []byte) error {
	switch {
	case op != OpText && op != OpBinary:
		return fmt.Errorf("ws: write of a %v message (only text or binary)", op)
	case op == OpText && !utf8.Valid(data):
		return errors.New("ws: write of a text message that is not UTF-8")
	}
	return nil
}

// Ping sends a ping and waits for its pong, which a concurrent Read
// receives: without one, Ping waits until ctx ends. It is safe for
// concurrent use.
func (c *Conn) Ping(ctx context.Context) error {
	ch := make(chan struct{})
	c.pmu.Lock()
	if c.pings == nil {
		c.pings = make(map[uint64]chan struct{})
	}
	c.nextPing++
	id := c.nextPing
	c.pings[id] = ch
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pings, id)
		c.pmu.Unlock()
	}()
	if err := c.writeControl(ctx, OpPing, binary.BigEndian.AppendUint64(nil, id)); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ws: ping: %w", ctx.Err())
	case <-c.done:
		return ErrClosed
	}
}

// Close performs the close handshake: it sends a close frame with code and
// reason (cut to [MaxCloseReason] bytes), waits up to [CloseTimeout] for
// the peer's close frame while discarding messages, and closes the
// connection. It returns nil once the peer's close frame arrived (also if
// it arrived before), and an error if code may not be sent or the
// handshake did not complete. It is safe for concurrent use, also with a
// Read, which then returns the peer's [*CloseError].
func (c *Conn) Close(code StatusCode, reason string) error {
	if code != StatusNoStatus && !code.valid() {
		return fmt.Errorf("ws: close with status %v, which may not be sent", code)
	}
	if err := c.sendClose(code, reason); err != nil {
		c.CloseNow()
		return err
	}
	t := time.AfterFunc(CloseTimeout, func() { c.CloseNow() })
	defer t.Stop()
	c.rmu.Lock()
	c.discard, c.queue = true, nil
	for c.rerr == nil && c.readOnce(context.Background()) == nil {
	}
	err := c.rerr
	c.rmu.Unlock()
	c.CloseNow()
	if CloseStatus(err) != StatusNone {
		return nil
	}
	return fmt.Errorf("ws: close handshake: %w", err)
}

// CloseNow closes the connection without a close handshake. It returns the
// error of closing the network connection, the same on every call.
func (c *Conn) CloseNow() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.nc.Close()
		close(c.done)
	})
	return c.closeErr
}

// sendClose sends a close frame unless one was sent; later writes return
// ErrClosed.
func (c *Conn) sendClose(code StatusCode, reason string) error {
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return nil
	}
	if c.werr != nil {
		c.wmu.Unlock()
		return c.werr
	}
	c.closeSent = true
	var key *[4]byte
	if c.role == Client {
		key = newMaskKey()
	}
	c.wbuf = AppendClose(c.wbuf, code, reason, key)
	c.queued++
	ctx, cancel := context.WithTimeout(context.Background(), controlWriteTimeout)
	defer cancel()
	return c.await(ctx, c.queued)
}

// writeControl sends a ping or pong, bounded by ctx and
// controlWriteTimeout.
func (c *Conn) writeControl(ctx context.Context, op Opcode, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, controlWriteTimeout)
	defer cancel()
	return c.write(ctx, func(b []byte) []byte { return c.appendFrame(b, op, payload) })
}

// write appends frames with add and returns once they are written.
func (c *Conn) write(ctx context.Context, add func([]byte) []byte) error {
	c.wmu.Lock()
	if err := c.writable(); err != nil {
		c.wmu.Unlock()
		return err
	}
	c.wbuf = add(c.wbuf)
	c.queued++
	return c.await(ctx, c.queued)
}

// await returns once frame seq is written, writing it itself unless a
// write is under way (then the next write carries it). c.wmu is held on
// entry and released on return.
func (c *Conn) await(ctx context.Context, seq uint64) error {
	for {
		switch {
		case c.written >= seq:
			c.wmu.Unlock()
			return nil
		case c.werr != nil:
			err := c.werr
			c.wmu.Unlock()
			return err
		case !c.writing:
			c.lead(ctx)
			continue
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		c.wmu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			// The frame is queued and may yet be half written: the
			// connection is unusable.
			c.CloseNow()
			c.wmu.Lock()
			if c.written >= seq {
				c.wmu.Unlock()
				return nil
			}
			if c.werr == nil {
				c.werr = fmt.Errorf("ws: write: %w", ctx.Err())
			}
			err := c.werr
			c.wmu.Unlock()
			return err
		}
		c.wmu.Lock()
	}
}

// lead writes every frame queued so far in one write with ctx's deadline,
// then wakes the waiting writers. c.wmu is held on entry and on return,
// released during the write.
func (c *Conn) lead(ctx context.Context) {
	c.writing = true
	// Let the goroutines that are ready to run (say, those woken by the
	// responses of one read) queue their frames first, so that they
	// share this write instead of each making its own.
	c.wmu.Unlock()
	runtime.Gosched()
	c.wmu.Lock()
	buf, upto := c.wbuf, c.queued
	c.wbuf = c.spare[:0]
	c.spare = nil
	c.wmu.Unlock()
	err := c.flush(ctx, buf)
	c.wmu.Lock()
	c.writing = false
	if cap(buf) <= keepWriteBuffer {
		c.spare = buf
	}
	if err != nil {
		if c.werr == nil {
			c.werr = err
		}
	} else {
		c.written = upto
	}
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// writable returns the error a write must return. c.wmu is held.
func (c *Conn) writable() error {
	switch {
	case c.werr != nil:
		return c.werr
	case c.closeSent:
		return ErrClosed
	}
	return nil
}

// appendFrame appends a frame, masked with a fresh key if c is a client.
func (c *Conn) appendFrame(dst []byte, op Opcode, data []byte) []byte {
	if c.role == Client {
		return AppendFrame(dst, op, data, newMaskKey())
	}
	return AppendFrame(dst, op, data, nil)
}

// newMaskKey returns a masking key from crypto/rand, as RFC 6455 section
// 5.3 requires (an unpredictable key per frame).
func newMaskKey() *[4]byte {
	var k [4]byte
	rand.Read(k[:]) // never fails
	return &k
}

// flush writes buf with ctx's deadline; on failure it closes the
// connection (a frame may be half written). Only the leader calls it.
func (c *Conn) flush(ctx context.Context, buf []byte) error {
	deadline, _ := ctx.Deadline()
	_ = c.nc.SetWriteDeadline(deadline)
	stop := watch(ctx, func() { _ = c.nc.SetWriteDeadline(aLongTimeAgo()) })
	_, err := c.nc.Write(buf)
	stop()
	if err == nil {
		return nil
	}
	if cerr := contextError(ctx, err); cerr != nil {
		err = cerr
	}
	c.CloseNow()
	return fmt.Errorf("ws: write: %w", err)
}

// watch calls f when ctx is done, until stop is called; stop returns once
// f, if it started, has returned, so that f cannot act after stop.
func watch(ctx context.Context, f func()) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	ran := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		f()
		close(ran)
	})
	return func() {
		if !cancel() {
			<-ran
		}
	}
}

// contextError returns the error of ctx that caused the I/O error err, or
// nil if ctx did not cause it. ctx's deadline, set on the connection,
// fires in the network poller a moment before ctx's own timer, so ctx.Err()
// may still be nil.
func contextError(ctx context.Context, err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// aLongTimeAgo is a deadline in the past: it interrupts blocked I/O.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }
