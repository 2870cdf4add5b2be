package ws

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// interopSizes are the message sizes of the interoperability tests: every
// length encoding and its bounds, and a large message.
var interopSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20}

const interopMax = 2 << 20

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// payload returns n bytes that differ between sizes and positions.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// ourServer starts an HTTP server that upgrades with Upgrade and runs
// serve on a server-side Conn, and returns its ws:// URL.
func ourServer(t *testing.T, serve func(ctx context.Context, c *Conn)) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, buffered, err := Upgrade(w, r, UpgradeOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		c := NewConn(nc, buffered, Server, interopMax)
		defer c.CloseNow()
		serve(r.Context(), c)
	}))
	t.Cleanup(s.Close)
	return "ws://" + s.Listener.Addr().String() + "/ws"
}

// echo answers every message with itself until Read fails, and then sends
// Read's error on done.
func echo(done chan<- error) func(ctx context.Context, c *Conn) {
	return func(ctx context.Context, c *Conn) {
		for {
			op, data, err := c.Read(ctx)
			if err == nil {
				err = c.Write(ctx, op, data)
			}
			if err != nil {
				done <- err
				return
			}
		}
	}
}

func TestInteropCoderClient(t *testing.T) {
	ctx := testContext(t)
	done := make(chan error, 1)
	url := ourServer(t, echo(done))
	// The client offers compression, which Upgrade must not accept.
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extension negotiated: %q", ext)
	}
	c.SetReadLimit(interopMax)

	for _, n := range interopSizes {
		want := payload(n)
		if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, want) {
			t.Fatalf("echo of %d bytes: %v, %d bytes, %v", n, typ, len(got), err)
		}
	}

	// A message in fragments: coder's Writer sends a frame per Write.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"frag", "ment", "ed ✓"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if typ, got, err := c.Read(ctx); err != nil || typ != websocket.MessageText || string(got) != "fragmented ✓" {
		t.Fatalf("fragmented echo: %v %q %v", typ, got, err)
	}

	// Ping: coder's Ping waits for a Read to see its pong, so echo
	// messages until it returns.
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(ctx) }()
	for done := false; !done; {
		select {
		case err := <-pinged:
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			done = true
		default:
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("while pinging")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != "while pinging" {
			t.Fatalf("echo while pinging: %q %v", got, err)
		}
	}

	// The client closes; the server answers.
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	var ce *CloseError
	if err := <-done; !errors.As(err, &ce) || ce.Code != StatusNormalClosure || ce.Reason != "bye" {
		t.Fatalf("server's Read: %v", err)
	}
}

func TestInteropCoderClientServerCloses(t *testing.T) {
	ctx := testContext(t)
	result := make(chan error, 2)
	url := ourServer(t, func(ctx context.Context, c *Conn) {
		reads := make(chan error, 1)
		go func() {
			_, _, err := c.Read(ctx)
			reads <- err
		}()
		result <- c.Ping(ctx)
		result <- c.Close(4000, "server says bye")
		if err := <-reads; CloseStatus(err) != 4000 {
			t.Errorf("server's Read after Close: %v", err)
		}
	})
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx) // answers the ping, then gets the close
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "server says bye" {
		t.Fatalf("client's Read: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server's Ping: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server's Close: %v", err)
	}
}

// coderServer starts a coder/websocket server running serve, and returns
// its ws:// URL.
func coderServer(t *testing.T, serve func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(interopMax)
		serve(r.Context(), c)
	}))
	t.Cleanup(s.Close)
	return "ws://" + s.Listener.Addr().String() + "/ws"
}

func TestInteropCoderServer(t *testing.T) {
	ctx := testContext(t)
	done := make(chan error, 1)
	url := coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		for {
			typ, data, err := c.Read(ctx)
			if err == nil {
				err = c.Write(ctx, typ, data)
			}
			if err != nil {
				done <- err
				return
			}
		}
	})
	c, err := Dial(ctx, url, DialOptions{MaxMessage: interopMax})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	type read struct {
		op   Opcode
		data []byte
		err  error
	}
	reads := make(chan read, 1)
	go func() {
		for {
			op, data, err := c.Read(ctx)
			reads <- read{op, data, err}
			if err != nil {
				return
			}
		}
	}()
	for _, n := range interopSizes {
		want := payload(n)
		if err := c.Write(ctx, OpBinary, want); err != nil {
			t.Fatal(err)
		}
		if r := <-reads; r.err != nil || r.op != OpBinary || !bytes.Equal(r.data, want) {
			t.Fatalf("echo of %d bytes: %v, %d bytes, %v", n, r.op, len(r.data), r.err)
		}
	}
	batch := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	if err := c.WriteBatch(ctx, OpText, batch); err != nil {
		t.Fatal(err)
	}
	for _, want := range batch {
		if r := <-reads; r.err != nil || r.op != OpText || !bytes.Equal(r.data, want) {
			t.Fatalf("echo of a batch: %v %q %v", r.op, r.data, r.err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-done; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("server's Read: %v", err)
	}
	if r := <-reads; CloseStatus(r.err) != StatusNormalClosure {
		t.Fatalf("client's Read after Close: %v", r.err)
	}
}

func TestInteropCoderServerCloses(t *testing.T) {
	ctx := testContext(t)
	result := make(chan error, 2)
	url := coderServer(t, func(ctx context.Context, c *websocket.Conn) {
		ctx = c.CloseRead(ctx)
		result <- c.Ping(ctx)
		result <- c.Close(4001, "coder says bye")
	})
	c, err := Dial(ctx, url, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx) // answers the ping, then gets the close
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "coder says bye" {
		t.Fatalf("client's Read: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server's Ping: %v", err)
	}
	if err := <-result; err != nil {
		t.Fatalf("server's Close: %v", err)
	}
	// The handshake is complete: the connection is closed.
	if _, err := c.NetConn().Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to the connection after the close handshake: %v", err)
	}
}
