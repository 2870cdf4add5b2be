package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/netpoll"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/ws"
)

// Output limits of one connection, each with its reason.
const (
	// maxQueuedRequests is how many decoded requests may wait for a free
	// slot (MaxInFlightPerConn run at once) before the connection's socket
	// is no longer read: TCP then slows the peer down, and the requests a
	// connection can make the server hold stay bounded.
	maxQueuedRequests = MaxInFlightPerConn
	// pushHighWater is how many bytes of frames may wait to be written
	// before mailbox delivery waits for the peer to read: a slow reader
	// cannot make the server hold its whole mailbox in memory.
	pushHighWater = 1 << 20
	// maxOutput bounds what may wait to be written at all (responses and
	// small pushes add to it without waiting): beyond it the peer is not
	// reading and the connection is dropped.
	maxOutput = 8 << 20
	// keepWriteBuffer is the largest write buffer kept for reuse while a
	// connection is busy; bigger ones go back to the garbage collector.
	keepWriteBuffer = 64 << 10
	// closeTimeout bounds the wait for the peer's close frame after ours.
	closeTimeout = 5 * time.Second
)

// errStopReading ends reading after a close frame has been queued: the
// connection ends when that frame is written.
var errStopReading = errors.New("relay: closing")

// conn is one WebSocket connection. While idle it holds no goroutine and
// no buffer: the relay's poller reads it when bytes arrive, and a writer
// goroutine runs only while frames wait to be written.
type conn struct {
	r      *Relay
	nc     net.Conn
	raw    syscall.RawConn // nc's socket, for writes that never wait; nil for other conns
	watch  atomic.Pointer[netpoll.Watch]
	source string // rate-limit key; memory only
	ctx    context.Context
	cancel context.CancelFunc

	parser ws.Parser // used only by the poller's callback

	reqMu   sync.Mutex // guards the request queue
	running int        // requests being handled
	queue   []*wirepb.Request
	// inFlight and completed count the requests running and the requests
	// done (wrapping), for the ping loop's watchdog: a connection with
	// requests running and none completed for the handler timeout is
	// stuck. (A context with a timer for each request cost 5% of the CPU
	// at saturation.) watchCompleted and watchSince are the watchdog's,
	// read and written by the ping loop alone.
	inFlight       atomic.Int32
	completed      atomic.Uint32
	watchCompleted uint32
	watchSince     int64
	paused         bool           // reading stopped until the queue drains
	noMore         bool           // draining or ended: no request starts (stopRequests)
	handlers       sync.WaitGroup // running requests

	nextPing atomic.Int64 // unix nanoseconds of the next ping
	pingSent atomic.Int64 // unix nanoseconds of the unanswered ping, or 0

	out          sync.Mutex        // guards the output fields below
	outBuf       []byte            // frames waiting to be written
	pending      []*store.Envelope // envelopes to push after outBuf, not yet encoded
	pendingBytes int               // their size, as pushBatches counts it
	writing      bool              // a writer goroutine is running
	closing      bool              // a close frame is queued: nothing more is
	endAfter     bool              // end the connection once outBuf is written
	closed       bool              // the socket is closed
	drained      *sync.Cond        // signalled when outBuf shrinks (on out)
	endOnce      sync.Once
	finished     chan struct{} // closed when cleanup is done

	mu          sync.Mutex // guards the fields below
	nonce       []byte
	nonceExpiry time.Time
	authed      bool
	device      bus.Device
	mailbox     *mailbox
	provAddrs   [][]byte // provisioning addresses this connection opened
}

func newConn(r *Relay, nc net.Conn, source string) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{r: r, nc: nc, source: source, ctx: ctx, cancel: cancel,
		parser:   ws.NewParser(ws.Server, wire.MaxFrameSize),
		finished: make(chan struct{})}
	c.drained = sync.NewCond(&c.out)
	c.nextPing.Store(r.now().Add(r.cfg.PingInterval).UnixNano())
	if sc, ok := nc.(syscall.Conn); ok && r.poller != nil && netpoll.CanWriteNow {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

// start feeds the bytes that arrived with the handshake and hands the
// socket to the poller.
func (c *conn) start(early []byte) {
	if len(early) > 0 {
		if err := c.onData(early); err != nil {
			c.onClose(err)
			return
		}
	}
	w, err := c.r.poller.Add(c.nc, netpoll.Callbacks{OnData: c.onData, OnClose: c.onClose})
	if err != nil {
		c.r.log.Warn("poll connection", "err", withoutAddrs(err))
		c.end()
		return
	}
	c.watch.Store(w)
	if c.ctx.Err() != nil { // ended before the watch was stored
		w.Remove()
	}
}

// onData parses what the socket delivered.
func (c *conn) onData(b []byte) error {
	err := c.parser.Feed(b, c.onMessage)
	var pe *ws.ProtocolError
	if errors.As(err, &pe) {
		c.r.m.badFrames.Inc()
		c.closeWith(pe.Code, pe.Error(), true)
		return errStopReading
	}
	return err
}

// onClose is called once when reading ends.
func (c *conn) onClose(err error) {
	if err == nil || errors.Is(err, errStopReading) {
		// Removed by end, or the queued close frame ends the
		// connection.
		return
	}
	if err != nil && !isClosed(err) {
		c.r.log.Debug("read", "err", withoutAddrs(err))
	}
	c.end()
}

// onMessage handles one message or control frame.
func (c *conn) onMessage(op ws.Opcode, data []byte) error {
	switch op {
	case ws.OpBinary:
	case ws.OpPing:
		c.sendFrame(ws.OpPong, data)
		return nil
	case ws.OpPong:
		c.pingSent.Store(0)
		return nil
	case ws.OpClose:
		// Echo the peer's code; if ours went first, this is the answer.
		code, _ := ws.ParseClose(data)
		if code == ws.StatusNoStatus {
			code = ws.StatusNormalClosure
		}
		if !c.closeWith(code, "", true) {
			c.end()
		}
		return errStopReading
	default: // text
		c.r.m.badFrames.Inc()
		c.closeWith(ws.StatusUnsupportedData, "binary frames only", true)
		return errStopReading
	}
	req, err := wire.DecodeRequest(data)
	if err != nil {
		c.r.m.badFrames.Inc()
		if !c.refuse(err) {
			return errStopReading
		}
		return nil
	}
	c.dispatch(req)
	return nil
}

// dispatch runs a request now if a slot is free, or queues it; a full
// queue stops reading until it drains. A quiet ack takes no slot, and a
// Send that waits for nothing but its commit holds no goroutine (startSend).
func (c *conn) dispatch(req *wirepb.Request) {
	if c.startQuietAck(req) {
		return
	}
	c.reqMu.Lock()
	if c.noMore {
		c.reqMu.Unlock()
		c.write(wire.Error(req.Id, wirepb.Code_UNAVAILABLE, "server shutting down"))
		return
	}
	if c.running < MaxInFlightPerConn {
		c.running++
		c.handlers.Add(1)
		c.reqMu.Unlock()
		if !c.startSend(req) {
			c.r.workers.Go(func() { c.serve(req) })
		}
		return
	}
	c.queue = append(c.queue, req)
	if w := c.watch.Load(); w != nil && len(c.queue) >= maxQueuedRequests && !c.paused {
		c.paused = true
		w.Pause()
	}
	c.reqMu.Unlock()
}

// serve handles requests until the queue is empty. A request runs under
// the connection's context; the ping loop closes a connection whose
// requests stop finishing for the handler timeout.
func (c *conn) serve(req *wirepb.Request) {
	defer c.handlers.Done()
	for {
		c.r.m.requests.Inc()
		c.inFlight.Add(1)
		resp := c.handle(c.ctx, req)
		c.completed.Add(1)
		c.inFlight.Add(-1)
		if resp != nil {
			c.write(resp)
		}
		var more bool
		if req, more = c.next(); !more {
			return
		}
	}
}

// complete answers a request that startSend took, and passes its slot on:
// to the next queued request, on a worker, or back.
func (c *conn) complete(id uint64, rep reply) {
	c.completed.Add(1)
	c.inFlight.Add(-1)
	if f := rep.frame(id); f != nil {
		c.write(f)
	}
	if req, more := c.next(); more {
		c.r.workers.Go(func() { c.serve(req) }) // takes over the slot
		return
	}
	c.handlers.Done()
}

// next takes the next queued request for a slot that is done; false, with
// the slot given back, if there is none (or the connection ended).
func (c *conn) next() (*wirepb.Request, bool) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if len(c.queue) == 0 || c.ctx.Err() != nil {
		c.running--
		return nil, false
	}
	req := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	if c.paused && len(c.queue) < maxQueuedRequests/2 {
		c.paused = false
		c.watch.Load().Resume()
	}
	return req, true
}

// stuck reports whether the connection has had requests running, and
// none finishing, for longer than timeout, as seen from the ping loop
// (which alone calls it) at now (Unix nanoseconds).
func (c *conn) stuck(now int64, timeout time.Duration) bool {
	if c.inFlight.Load() == 0 {
		c.watchSince = 0
		return false
	}
	if f := c.completed.Load(); c.watchSince == 0 || f != c.watchCompleted {
		c.watchCompleted, c.watchSince = f, now
		return false
	}
	return now-c.watchSince > int64(timeout)
}

// refuse answers a frame that did not decode. A frame whose request id
// could be read gets an error response and the connection lives on; one
// without (garbage, oversize, another version) closes the connection after
// the response, as the protocol says. It reports whether to keep reading.
func (c *conn) refuse(err error) bool {
	var pe *wire.ParseError
	if !errors.As(err, &pe) {
		c.closeWith(ws.StatusProtocolError, "bad frame", true)
		return false
	}
	code := pe.Code()
	c.write(wire.Error(pe.ID, code, truncate(pe.Error())))
	if pe.ID == 0 {
		status := ws.StatusProtocolError
		if errors.Is(err, wire.ErrTooLarge) {
			status = ws.StatusMessageTooBig
		}
		c.closeWith(status, code.String(), true)
		return false
	}
	return true
}

// truncate bounds a status message to what the protocol allows.
func truncate(s string) string {
	if len(s) > wire.MaxStatusMessageSize {
		return s[:wire.MaxStatusMessageSize]
	}
	return s
}

// write queues one frame.
func (c *conn) write(f *wirepb.Frame) {
	b, err := wire.Encode(f)
	if err != nil {
		c.r.log.Error("encode frame", "err", err)
		return
	}
	c.sendFrame(ws.OpBinary, b)
}

func (c *conn) push(body proto.Message) { c.write(wire.NewPush(body)) }

// sendFrame queues a frame and makes sure a writer runs. It never blocks.
func (c *conn) sendFrame(op ws.Opcode, payload []byte) {
	c.out.Lock()
	if c.closing || c.closed {
		c.out.Unlock()
		return
	}
	c.encodePendingLocked() // pushes queued before this frame go first
	c.outBuf = ws.AppendFrame(c.outBuf, op, payload, nil)
	over := len(c.outBuf) > maxOutput
	c.kickLocked()
	c.out.Unlock()
	if over {
		c.r.log.Debug("peer not reading: dropping connection")
		c.end()
	}
}

// closeWith queues a close frame and reports whether it did (false if one
// was already queued). With endAfter the connection ends once the frame is
// written (the peer closed first, or broke the protocol); without, it ends
// when the peer answers or after closeTimeout.
func (c *conn) closeWith(code ws.StatusCode, reason string, endAfter bool) bool {
	c.out.Lock()
	if c.closing || c.closed {
		c.out.Unlock()
		return false
	}
	c.encodePendingLocked()
	c.outBuf = ws.AppendClose(c.outBuf, code, truncate(reason), nil)
	c.closing = true
	c.endAfter = endAfter
	c.kickLocked()
	c.out.Unlock()
	if !endAfter {
		time.AfterFunc(closeTimeout, c.end)
	}
	return true
}

// kickLocked starts the writer if frames wait and none runs: the relay's
// flusher, which writes the socket without waiting (tryFlush), or a
// writer goroutine of the connection's own.
func (c *conn) kickLocked() {
	if !c.writing && (len(c.outBuf) > 0 || len(c.pending) > 0) && !c.closed {
		c.writing = true
		if c.raw != nil {
			c.r.flushSoon(c)
		} else {
			c.r.workers.Go(c.flush)
		}
	}
}

// flushSoon queues a connection for the flusher, starting it if it is not
// running: one goroutine woken for the responses and pushes of a whole
// group commit, instead of one per connection (at 10,000 msgs/s, sottod's
// futex calls fell from 2,100 to 1,300 a second).
func (r *Relay) flushSoon(c *conn) {
	r.flushMu.Lock()
	r.dirty = append(r.dirty, c)
	start := !r.flushing
	r.flushing = true
	r.flushMu.Unlock()
	if start {
		r.workers.Go(r.flushDirty)
	}
}

// flushDirty writes the queued connections until none is left.
func (r *Relay) flushDirty() {
	// Let the goroutines woken with the one that started this (the
	// requests of one group commit) queue their frames first.
	runtime.Gosched()
	var batch []*conn
	for {
		r.flushMu.Lock()
		batch, r.dirty = r.dirty, batch[:0]
		if len(batch) == 0 {
			r.flushing = false
			r.flushMu.Unlock()
			return
		}
		r.flushMu.Unlock()
		for i, c := range batch {
			c.tryFlush()
			batch[i] = nil
		}
		if cap(batch) > maxDirtyKept {
			batch = nil
		}
	}
}

// maxDirtyKept is the largest list of queued connections kept for reuse.
const maxDirtyKept = 4096

// tryFlush writes what the connection has queued, as far as the socket
// takes it without waiting; a socket that would block gets a writer
// goroutine of its own (flush), which waits with a deadline. The caller
// holds the connection's writing turn (c.writing), and passes it on: what
// queues while it writes waits behind the other queued connections, so
// that one busy connection (a mailbox drained to a fast reader) cannot
// keep the flusher from the rest.
func (c *conn) tryFlush() {
	b, ok := c.takeOutput(nil)
	if !ok {
		return
	}
	n, err := c.writeNow(b)
	if err != nil {
		c.writeFailed(err)
		return
	}
	if n < len(b) {
		// The socket's buffer is full: what is left goes first,
		// written by a goroutine that may wait.
		c.out.Lock()
		c.outBuf = append(b[n:len(b):len(b)], c.outBuf...)
		c.out.Unlock()
		c.r.workers.Go(c.flush)
		return
	}
	c.r.flushSoon(c) // the next turn ends it if nothing has queued
}

// writeNow writes b to the socket without waiting and returns how much it
// took (0 when its buffer is full).
func (c *conn) writeNow(b []byte) (int, error) { return netpoll.WriteNow(c.raw, b) }

// flush writes whatever has queued, in as few writes as it arrives in,
// until nothing is left; then the goroutine ends.
func (c *conn) flush() {
	// Let the goroutines woken with the one that started this writer (the
	// requests of one group commit) queue their responses first, so that
	// one write carries them all.
	runtime.Gosched()
	var spare []byte
	for {
		b, ok := c.takeOutput(spare)
		if !ok {
			return
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.nc.Write(b); err != nil {
			c.writeFailed(err)
			return
		}
		spare = reusable(b)
	}
}

// takeOutput takes what waits to be written, leaving spare's memory to
// queue into. With nothing left (or the socket closed) it ends the writing
// turn, and the connection if its close frame asked for that, and reports
// false.
func (c *conn) takeOutput(spare []byte) ([]byte, bool) {
	c.out.Lock()
	c.encodePendingLocked()
	b := c.outBuf
	if len(b) == 0 || c.closed {
		c.writing = false
		c.outBuf = nil // an idle connection keeps no buffer
		c.drained.Broadcast()
		endNow := c.endAfter
		c.out.Unlock()
		if endNow {
			c.end()
		}
		return nil, false
	}
	c.outBuf = spare[:0]
	c.drained.Broadcast()
	c.out.Unlock()
	return b, true
}

// writeFailed ends the writing turn and the connection after a failed
// write.
func (c *conn) writeFailed(err error) {
	if !isClosed(err) {
		c.r.log.Debug("write", "err", withoutAddrs(err))
	}
	c.out.Lock()
	c.writing = false
	c.out.Unlock()
	c.end()
}

// reusable returns a written buffer for reuse, or nil if it is too big to
// keep.
func reusable(b []byte) []byte {
	if cap(b) > keepWriteBuffer {
		return nil
	}
	return b
}

// waitWritable blocks until fewer than pushHighWater bytes wait to be
// written, or the connection ends; it reports whether it may push.
func (c *conn) waitWritable() bool {
	c.out.Lock()
	defer c.out.Unlock()
	for len(c.outBuf)+c.pendingBytes >= pushHighWater && !c.closed && !c.closing {
		c.drained.Wait()
	}
	return !c.closed && !c.closing
}

// writable reports, without waiting, whether a push would stay under
// pushHighWater.
func (c *conn) writable() bool {
	c.out.Lock()
	defer c.out.Unlock()
	return len(c.outBuf)+c.pendingBytes < pushHighWater && !c.closed && !c.closing
}

// ping sends one ping carrying the time; the relay's ping loop checks for
// the pong.
func (c *conn) ping(now time.Time) {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], uint64(now.UnixNano()))
	c.pingSent.Store(now.UnixNano())
	c.sendFrame(ws.OpPing, p[:])
}

// stopRequests makes dispatch refuse what comes next, so that waiting for
// the running requests cannot race with one starting (a WaitGroup's Add
// from zero must not run beside its Wait).
func (c *conn) stopRequests() {
	c.reqMu.Lock()
	c.noMore = true
	c.reqMu.Unlock()
}

// drain finishes in-flight requests, then closes with 1001.
func (c *conn) drain() {
	c.stopRequests()
	c.handlers.Wait()
	c.closeWith(ws.StatusGoingAway, "server shutting down", false)
}

// end closes the socket at once (once) and cleans up in the background.
func (c *conn) end() {
	c.endOnce.Do(func() {
		c.cancel()
		if w := c.watch.Load(); w != nil {
			w.Remove()
		}
		c.out.Lock()
		c.closed = true
		c.outBuf = nil
		c.pending, c.pendingBytes = nil, 0
		c.drained.Broadcast()
		c.out.Unlock()
		_ = c.nc.Close()
		go c.cleanup()
	})
}

func (c *conn) cleanup() {
	defer close(c.finished)
	c.stopRequests()
	c.handlers.Wait()
	c.mu.Lock()
	authed, dev, addrs, mb := c.authed, c.device, c.provAddrs, c.mailbox
	c.mu.Unlock()
	if authed {
		c.r.removeDevice(dev, c)
		c.r.m.authenticated.Add(-1)
	}
	if mb != nil {
		mb.stop()
	}
	for _, a := range addrs {
		c.r.provisioning.remove(a)
	}
	c.r.forget(c)
}

// authenticatedDevice returns the connection's device, if authenticated.
func (c *conn) authenticatedDevice() (bus.Device, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device, c.authed
}

// withoutAddrs is a network error without the addresses of its ends: a
// *net.OpError names the peer's address and port, which the server must
// never log (DESIGN.md, the subpoena test).
func withoutAddrs(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("%s: %w", oe.Op, oe.Err)
	}
	return err
}
