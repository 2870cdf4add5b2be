// Package wsclient is a minimal client of sottod's WebSocket protocol
// (package wire): it dials, matches responses to requests by id, and hands
// out server pushes. The client package, the load tool and the server's
// end-to-end tests are built on it.
package wsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/ws"
)

// PushBuffer is how many pushes wait for the reader of Pushes before the
// connection stops reading (back-pressure, rather than unbounded memory).
const PushBuffer = 256

// StatusError is a response whose status is not OK.
type StatusError struct {
	Code    wirepb.Code
	Message string
	Status  *wirepb.Status
}

func (e *StatusError) Error() string { return fmt.Sprintf("sottod: %v: %s", e.Code, e.Message) }

// Code returns err's status code, OK if err is nil, or INTERNAL if err is not
// a *StatusError.
func Code(err error) wirepb.Code {
	if err == nil {
		return wirepb.Code_OK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return wirepb.Code_INTERNAL
}

// ErrClosed is returned for requests on a closed connection.
var ErrClosed = errors.New("wsclient: connection closed")

// Conn is one WebSocket connection to sottod. It is safe for concurrent use.
type Conn struct {
	ws     *ws.Conn
	nextID atomic.Uint64
	pushes chan *wirepb.Push
	done   chan struct{}

	onPush atomic.Pointer[func(*wirepb.Push)] // SetPushHandler's, if set

	mu      sync.Mutex
	pending map[uint64]waiter
	err     error
}

// waiter is a request waiting for its response: a Do blocked on ch, or a
// Start whose done is called by the reader.
type waiter struct {
	ch   chan *wirepb.Response
	done func(*wirepb.Response, error)
}

// Options configure Dial.
type Options struct {
	// Header is sent with the upgrade request (tests set Origin).
	Header http.Header
	// NetDial opens the TCP connection; nil means a net.Dialer's.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial connects to url (ws:// or wss://, the server's /v1/websocket).
func Dial(ctx context.Context, url string, opts *Options) (*Conn, error) {
	if opts == nil {
		opts = &Options{}
	}
	wc, err := ws.Dial(ctx, url, ws.DialOptions{Header: opts.Header, NetDial: opts.NetDial, MaxMessage: wire.MaxFrameSize})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c := &Conn{ws: wc, pushes: make(chan *wirepb.Push, PushBuffer), done: make(chan struct{}),
		pending: map[uint64]waiter{}}
	go c.read()
	return c, nil
}

func (c *Conn) read() {
	defer close(c.pushes)
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		f, err := wire.Decode(b)
		if err != nil {
			c.fail(fmt.Errorf("wsclient: bad frame from server: %w", err))
			c.ws.Close(ws.StatusProtocolError, "bad frame")
			return
		}
		switch k := f.Kind.(type) {
		case *wirepb.Frame_Response:
			c.mu.Lock()
			w, ok := c.pending[k.Response.Id]
			delete(c.pending, k.Response.Id)
			c.mu.Unlock()
			switch {
			case ok && w.done != nil:
				w.done(k.Response, statusError(k.Response))
			case ok:
				w.ch <- k.Response
			case k.Response.Id == 0:
				c.fail(statusError(k.Response))
			}
		case *wirepb.Frame_Push:
			if f := c.onPush.Load(); f != nil {
				(*f)(k.Push)
			} else {
				c.pushes <- k.Push
			}
		}
	}
}

// statusError is a response's status as an error: nil for OK.
func statusError(resp *wirepb.Response) error {
	s := resp.GetStatus()
	if s.GetCode() == wirepb.Code_OK {
		return nil
	}
	return &StatusError{Code: s.GetCode(), Message: s.GetMessage(), Status: s}
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	var started []func(*wirepb.Response, error)
	for id, w := range c.pending {
		if w.done != nil {
			started = append(started, w.done)
		} else {
			close(w.ch)
		}
		delete(c.pending, id)
	}
	closed := fmt.Errorf("%w: %w", ErrClosed, c.err)
	c.mu.Unlock()
	for _, done := range started {
		done(nil, closed)
	}
}

// Err returns why the connection ended, or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Do sends a request with body and waits for its response. A response with
// a status other than OK is returned as a *StatusError (with the response).
func (c *Conn) Do(ctx context.Context, body proto.Message) (*wirepb.Response, error) {
	ch := make(chan *wirepb.Response, 1)
	ids, err := c.send(ctx, []proto.Message{body}, []waiter{{ch: ch}})
	if err != nil {
		return nil, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w: %w", ErrClosed, c.Err())
		}
		return resp, statusError(resp)
	case <-ctx.Done():
		c.forget(ids[0])
		return nil, ctx.Err()
	}
}

// Start sends a request with body and returns without waiting: done gets
// its response (and a *StatusError if the status is not OK) or the error
// that ended the connection, exactly once, on the connection's reader
// goroutine (on the caller's if the write fails), so it must not block.
// If the request cannot be sent at all (it does not encode, or the
// connection has ended), Start returns the error and done is never
// called. A request whose response never comes waits until the connection
// ends: Start is for clients that bound their requests in flight
// themselves (the load tool).
func (c *Conn) Start(ctx context.Context, body proto.Message, done func(*wirepb.Response, error)) error {
	_, err := c.send(ctx, []proto.Message{body}, []waiter{{done: done}})
	return err
}

// StartBatch is Start for several requests written together, in one
// system call: dones[i] gets the outcome of bodies[i].
func (c *Conn) StartBatch(ctx context.Context, bodies []proto.Message, dones []func(*wirepb.Response, error)) error {
	ws := make([]waiter, len(dones))
	for i, done := range dones {
		ws[i].done = done
	}
	_, err := c.send(ctx, bodies, ws)
	return err
}

// send registers each request's waiter under a fresh id and writes the
// requests together. If the write fails, the waiters still pending get the
// error: a Start's done is called with it, and a Do's makes send return it.
func (c *Conn) send(ctx context.Context, bodies []proto.Message, waiters []waiter) ([]uint64, error) {
	ids := make([]uint64, len(bodies))
	frames := make([][]byte, len(bodies))
	for i, body := range bodies {
		ids[i] = c.nextID.Add(1)
		b, err := wire.Encode(wire.NewRequest(ids[i], body))
		if err != nil {
			return nil, err
		}
		frames[i] = b
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	for i, id := range ids {
		c.pending[id] = waiters[i]
	}
	c.mu.Unlock()
	var err error
	if len(frames) == 1 {
		err = c.ws.Write(ctx, ws.OpBinary, frames[0])
	} else {
		err = c.ws.WriteBatch(ctx, ws.OpBinary, frames)
	}
	if err == nil {
		return ids, nil
	}
	err = fmt.Errorf("send request: %w", err)
	lost := false
	for i, id := range ids {
		if !c.forget(id) {
			continue // answered, or failed by the reader
		}
		if waiters[i].done != nil {
			waiters[i].done(nil, err)
		} else {
			lost = true
		}
	}
	if lost {
		return nil, err
	}
	return ids, nil
}

// Post sends a request without waiting for its response, which is
// dropped if it comes: for requests whose answer changes nothing, sent by
// the goroutine that reads Pushes (an Ack, quiet or not), which must not
// wait on a response queued behind the pushes it has yet to read.
func (c *Conn) Post(ctx context.Context, body proto.Message) error {
	id := c.nextID.Add(1)
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	b, err := wire.Encode(wire.NewRequest(id, body))
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, ws.OpBinary, b); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	return nil
}

// forget drops a pending request, and says whether it was still pending.
func (c *Conn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// WriteRaw sends raw bytes as one binary message (for tests of hostile
// input).
func (c *Conn) WriteRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, ws.OpBinary, b)
}

// Pushes delivers the server's pushes, unless a push handler is set; it is
// closed when the connection ends.
func (c *Conn) Pushes() <-chan *wirepb.Push { return c.pushes }

// SetPushHandler makes the reader hand each push to f, on its goroutine,
// instead of queueing it for Pushes; f must not block. nil restores
// Pushes. A push being handed over when it is called may still reach the
// previous handler.
func (c *Conn) SetPushHandler(f func(*wirepb.Push)) {
	if f == nil {
		c.onPush.Store(nil)
		return
	}
	c.onPush.Store(&f)
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection normally.
func (c *Conn) Close() error { return c.ws.Close(ws.StatusNormalClosure, "") }

// CloseStatus returns the close code the server sent, or ws.StatusNone.
func CloseStatus(err error) ws.StatusCode { return ws.CloseStatus(err) }

// URL returns the WebSocket endpoint of a sottod given as an http://,
// https://, ws:// or wss:// URL: the scheme becomes ws or wss, and a URL
// without a path gets /v1/websocket.
func URL(server string) (*url.URL, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port", server)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("server URL %q: want http://, https://, ws:// or wss://", server)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/websocket"
	}
	return u, nil
}
