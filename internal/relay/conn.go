package relay

import (
	"context"
	"errors"
	"sync"
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

	mu          sync.Mutex // guards the fields below
	nonce       []byte
	nonceExpiry time.Time
	authed      bool
	device      bus.Device
	provAddrs   [][]byte // provisioning addresses this connection opened
}

func newConn(r *Relay, ws *websocket.Conn, source string) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	ws.SetReadLimit(wire.MaxFrameSize)
	return &conn{r: r, ws: ws, source: source, ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, MaxInFlightPerConn)}
}

// serve reads frames until the connection ends.
func (c *conn) serve() {
	defer c.cleanup()
	go c.pinger()
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
		f, err := wire.Decode(b)
		if err != nil {
			c.r.m.badFrames.Inc()
			if !c.refuse(err) {
				return
			}
			continue
		}
		req := f.GetRequest()
		if req == nil {
			c.r.m.badFrames.Inc()
			c.write(wire.Error(0, wirepb.Code_BAD_REQUEST, "clients send requests only"))
			c.ws.Close(websocket.StatusPolicyViolation, "clients send requests only")
			return
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

// pinger pings every PingInterval and closes the connection when a pong is
// later than PingTimeout.
func (c *conn) pinger() {
	t := time.NewTicker(c.r.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.PingTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.ws.Close(websocket.StatusPolicyViolation, "ping timeout")
				c.cancel()
				return
			}
		}
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
	authed, dev, addrs := c.authed, c.device, c.provAddrs
	c.mu.Unlock()
	if authed {
		c.r.removeDevice(dev, c)
		c.r.m.authenticated.Add(-1)
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

// deliver drains the device's mailbox and then pushes new envelopes as the
// bus signals them, until the connection ends.
func (c *conn) deliver(d bus.Device) {
	signal, unsubscribe := c.r.cfg.Bus.Subscribe(d)
	defer unsubscribe()
	c.checkPreKeys(d)
	var after store.EnvelopeID
	drained := false
	for {
		envs, err := c.r.cfg.Store.Read(c.ctx, d.Account, d.Device, after, wire.MaxEnvelopesPerPush)
		if err != nil {
			if c.ctx.Err() == nil {
				c.r.log.Warn("read mailbox", "err", err)
			}
			return
		}
		if len(envs) > 0 {
			out := &wirepb.Envelopes{Envelopes: make([]*wirepb.Envelope, len(envs))}
			for i, e := range envs {
				out.Envelopes[i] = &wirepb.Envelope{Id: uint64(e.ID), Content: e.Content}
			}
			after = envs[len(envs)-1].ID
			c.push(out)
			c.r.m.envelopesOut.Add(uint64(len(envs)))
			continue
		}
		if !drained {
			c.push(&wirepb.QueueEmpty{})
			drained = true
		}
		select {
		case <-signal:
		case <-c.ctx.Done():
			return
		}
	}
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
