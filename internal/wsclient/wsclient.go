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

	mu      sync.Mutex
	pending map[uint64]chan *wirepb.Response
	err     error
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
		pending: map[uint64]chan *wirepb.Response{}}
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
			ch := c.pending[k.Response.Id]
			delete(c.pending, k.Response.Id)
			c.mu.Unlock()
			if ch != nil {
				ch <- k.Response
			} else if k.Response.Id == 0 {
				c.fail(&StatusError{Code: k.Response.GetStatus().GetCode(), Message: k.Response.GetStatus().GetMessage(), Status: k.Response.GetStatus()})
			}
		case *wirepb.Frame_Push:
			c.pushes <- k.Push
		}
	}
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
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
	id := c.nextID.Add(1)
	ch := make(chan *wirepb.Response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()
	b, err := wire.Encode(wire.NewRequest(id, body))
	if err != nil {
		c.forget(id)
		return nil, err
	}
	if err := c.ws.Write(ctx, ws.OpBinary, b); err != nil {
		c.forget(id)
		return nil, fmt.Errorf("send request: %w", err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w: %w", ErrClosed, c.Err())
		}
		if s := resp.GetStatus(); s.GetCode() != wirepb.Code_OK {
			return resp, &StatusError{Code: s.GetCode(), Message: s.GetMessage(), Status: s}
		}
		return resp, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
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

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// WriteRaw sends raw bytes as one binary message (for tests of hostile
// input).
func (c *Conn) WriteRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, ws.OpBinary, b)
}

// Pushes delivers the server's pushes; it is closed when the connection
// ends.
func (c *Conn) Pushes() <-chan *wirepb.Push { return c.pushes }

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
