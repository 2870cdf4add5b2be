package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// conn is one WebSocket connection.
type conn struct {
	r      *Relay
	ws     *websocket.Conn
	source string // rate-limit key; memory only
	ctx    context.Context
	cancel context.CancelFunc

	inflight chan struct{}  // semaphore of running requests
	handlers sync.WaitGroup // running requests

	nextPing atomic.Int64 // unix nanoseconds of the next ping
	pinging  atomic.Bool  // a ping is waiting for its pong

	mu          sync.Mutex // guards the fields below
	nonce       []byte
	nonceExpiry time.Time
	authed      bool
	device      bus.Device
	mailbox     *mailbox
	provAddrs   [][]byte // provisioning addresses this connection opened
}

func newConn(r *Relay, ws *websocket.Conn, source string) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	ws.SetReadLimit(wire.MaxFrameSize)
	c := &conn{r: r, ws: ws, source: source, ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, MaxInFlightPerConn)}
	c.nextPing.Store(r.now().Add(r.cfg.PingInterval).UnixNano())
	return c
}

// serve reads frames until the connection ends.
func (c *conn) serve() {
	defer c.cleanup()
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			if !isClosed(err) {
				c.r.log.Debug("read", "err", err)
			}
			return
		}
		if typ != websocket.MessageBinary {
			c.r.m.badFrames.Inc()
			c.ws.Close(websocket.StatusUnsupportedData, "binary frames only")
			return
		}
		req, err := wire.DecodeRequest(b)
		if err != nil {
			c.r.m.badFrames.Inc()
			if !c.refuse(err) {
				return
			}
			continue
		}
		select {
		case c.inflight <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		c.handlers.Add(1)
		go func() {
			defer func() { <-c.inflight; c.handlers.Done() }()
			c.r.m.requests.Inc()
			ctx, cancel := context.WithTimeout(c.ctx, handlerTimeout)
			resp := c.handle(ctx, req)
			cancel()
			c.write(resp)
		}()
	}
}

// refuse answers a frame that did not decode. A frame whose request id
// could be read gets an error response and the connection lives on; one
// without (garbage, oversize, another version) closes the connection after
// the response, as the protocol says. It reports whether to keep reading.
func (c *conn) refuse(err error) bool {
	var pe *wire.ParseError
	if !errors.As(err, &pe) {
		c.ws.Close(websocket.StatusProtocolError, "bad frame")
		return false
	}
	code := pe.Code()
	c.write(wire.Error(pe.ID, code, truncate(pe.Error())))
	if pe.ID == 0 {
		status := websocket.StatusProtocolError
		if errors.Is(err, wire.ErrTooLarge) {
			status = websocket.StatusMessageTooBig
		}
		c.ws.Close(status, truncate(code.String()))
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

// write sends one frame, dropping the connection if the peer does not take
// it in time.
func (c *conn) write(f *wirepb.Frame) {
	b, err := wire.Encode(f)
	if err != nil {
		c.r.log.Error("encode frame", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, b); err != nil && !isClosed(err) {
		c.r.log.Debug("write", "err", err)
		c.ws.CloseNow()
	}
}

func (c *conn) push(body proto.Message) { c.write(wire.NewPush(body)) }

// ping sends one ping and closes the connection if the pong is later than
// PingTimeout. The relay's ping loop calls it, one short-lived goroutine per
// ping, so an idle connection holds no goroutine for pinging.
func (c *conn) ping() {
	defer c.pinging.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.PingTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil && c.ctx.Err() == nil {
		// The peer does not answer, so it will not answer a close
		// handshake either: drop the connection at once.
		c.cancel()
		c.ws.CloseNow()
	}
}

// drain finishes in-flight requests, then closes with 1001.
func (c *conn) drain() {
	c.handlers.Wait()
	c.ws.Close(websocket.StatusGoingAway, "server shutting down")
	c.cancel()
}

func (c *conn) cleanup() {
	c.cancel()
	c.handlers.Wait()
	c.ws.CloseNow()
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
}

// authenticatedDevice returns the connection's device, if authenticated.
func (c *conn) authenticatedDevice() (bus.Device, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device, c.authed
}

// mailbox pushes one device's envelopes on one connection. It runs a
// goroutine only while there is something to push: the bus's signal starts
// one, and it ends when the mailbox has been read to its end with no new
// signal, so an idle connection holds no goroutine for delivery.
type mailbox struct {
	c      *conn
	d      bus.Device
	cancel func() // ends the bus subscription

	mu      sync.Mutex // guards the fields below
	running bool       // a push goroutine is running
	again   bool       // a signal came while it ran
	after   store.EnvelopeID
	drained bool // QueueEmpty has been sent
}

// startMailbox subscribes to the device's signals and pushes what is
// already waiting.
func (c *conn) startMailbox(d bus.Device) *mailbox {
	m := &mailbox{c: c, d: d}
	m.cancel = c.r.cfg.Bus.Subscribe(d, m.signal)
	go func() {
		c.checkPreKeys(d)
		m.signal()
	}()
	return m
}

// signal is the bus callback; it never blocks.
func (m *mailbox) signal() {
	m.mu.Lock()
	if m.running {
		m.again = true
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	go m.run()
}

func (m *mailbox) stop() { m.cancel() }

func (m *mailbox) run() {
	for {
		m.push()
		m.mu.Lock()
		if !m.again || m.c.ctx.Err() != nil {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// push sends every envelope after the last one pushed, then QueueEmpty the
// first time the mailbox is found empty.
func (m *mailbox) push() {
	c := m.c
	for {
		envs, err := c.r.cfg.Store.Read(c.ctx, m.d.Account, m.d.Device, m.after, wire.MaxEnvelopesPerPush)
		if err != nil {
			if c.ctx.Err() == nil {
				c.r.log.Warn("read mailbox", "err", err)
			}
			return
		}
		if len(envs) == 0 {
			break
		}
		for _, batch := range pushBatches(envs) {
			out := &wirepb.Envelopes{Envelopes: make([]*wirepb.Envelope, len(batch))}
			for i, e := range batch {
				out.Envelopes[i] = &wirepb.Envelope{Id: uint64(e.ID), Content: e.Content}
			}
			c.push(out)
		}
		m.after = envs[len(envs)-1].ID
		c.r.m.envelopesOut.Add(uint64(len(envs)))
	}
	if !m.drained {
		m.drained = true
		c.push(&wirepb.QueueEmpty{})
	}
}

// pushBudget is how many bytes of envelope content one push may carry: a
// frame is at most wire.MaxFrameSize, and each envelope adds a few bytes of
// framing (an id and two lengths), budgeted at envelopeOverhead.
const (
	envelopeOverhead = 24
	pushBudget       = wire.MaxFrameSize - 1<<10
)

// pushBatches splits envelopes into runs that each fit in one push frame
// (a single envelope always fits: contents are at most
// wire.MaxContentSize).
func pushBatches(envs []store.Envelope) [][]store.Envelope {
	var out [][]store.Envelope
	start, size := 0, 0
	for i, e := range envs {
		n := len(e.Content) + envelopeOverhead
		if i > start && size+n > pushBudget {
			out = append(out, envs[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(out, envs[start:])
}

// checkPreKeys tells the device when it runs low on one-time prekeys.
func (c *conn) checkPreKeys(d bus.Device) {
	ec, kem, err := c.r.cfg.Store.CountPreKeys(c.ctx, d.Account, d.Device)
	if err != nil {
		return
	}
	if ec < PreKeysLowWater || kem < PreKeysLowWater {
		c.push(&wirepb.PreKeysLow{Ec: uint32(ec), Kem: uint32(kem)})
	}
}
