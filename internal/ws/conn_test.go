package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func dial(t *testing.T, url string, opts DialOptions) *Conn {
	t.Helper()
	c, err := Dial(testContext(t), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestConnEcho(t *testing.T) {
	ctx := testContext(t)
	done := make(chan error, 1)
	c := dial(t, ourServer(t, echo(done)), DialOptions{MaxMessage: interopMax})
	for _, n := range interopSizes {
		for _, op := range []Opcode{OpBinary, OpText} {
			want := bytes.Repeat([]byte("a"), n)
			if op == OpBinary {
				want = payload(n)
			}
			if err := c.Write(ctx, op, want); err != nil {
				t.Fatal(err)
			}
			gotOp, got, err := c.Read(ctx)
			if err != nil || gotOp != op || !bytes.Equal(got, want) {
				t.Fatalf("echo of %d bytes of %v: %v, %d bytes, %v", n, op, gotOp, len(got), err)
			}
		}
	}
	// Read's data is the caller's: the next Read does not overwrite it.
	c.WriteBatch(ctx, OpBinary, [][]byte{[]byte("first"), []byte("second")})
	_, first, _ := c.Read(ctx)
	_, second, _ := c.Read(ctx)
	if string(first) != "first" || string(second) != "second" {
		t.Fatalf("got %q, %q", first, second)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-done; CloseStatus(err) != StatusNormalClosure {
		t.Fatalf("server's Read: %v", err)
	}
	if err := c.Write(ctx, OpBinary, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestConnWriteChecks(t *testing.T) {
	ctx := testContext(t)
	c := dial(t, ourServer(t, echo(make(chan error, 1))), DialOptions{})
	for _, tt := range []struct {
		op   Opcode
		data string
	}{{OpPing, ""}, {OpClose, ""}, {OpContinuation, "x"}, {OpText, "\xff"}} {
		if err := c.Write(ctx, tt.op, []byte(tt.data)); err == nil {
			t.Errorf("Write(%v, %q) succeeded", tt.op, tt.data)
		}
		if err := c.WriteBatch(ctx, tt.op, [][]byte{[]byte(tt.data)}); err == nil {
			t.Errorf("WriteBatch(%v, %q) succeeded", tt.op, tt.data)
		}
	}
	// The connection is still usable.
	if err := c.Write(ctx, OpText, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "ok" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := c.Close(StatusAbnormal, ""); err == nil {
		t.Fatal("Close with status 1006 succeeded")
	}
}

func TestConnReadContext(t *testing.T) {
	send := make(chan struct{})
	url := ourServer(t, func(ctx context.Context, c *Conn) {
		<-send
		c.Write(ctx, OpText, []byte("late"))
		c.Read(ctx) // until the client goes
	})
	c := dial(t, url, DialOptions{})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, _, err := c.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Read: %v", err)
	}
	// The connection survives both.
	close(send)
	if _, got, err := c.Read(testContext(t)); err != nil || string(got) != "late" {
		t.Fatalf("Read after a timeout: %q, %v", got, err)
	}
}

// rawServer starts an HTTP server that upgrades and passes the raw
// connection and a Server parser of what it reads to serve.
func rawServer(t *testing.T, serve func(nc net.Conn, read func() ([]msg, error))) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, buffered, err := Upgrade(w, r, UpgradeOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		p := NewParser(Server, 1<<20)
		read := func() ([]msg, error) {
			var got []msg
			if err := p.Feed(buffered, collect(&got)); err != nil {
				return got, err
			}
			buffered = nil
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := make([]byte, 4096)
			for len(got) == 0 {
				n, err := nc.Read(b)
				if err := p.Feed(b[:n], collect(&got)); err != nil {
					return got, err
				}
				if err != nil {
					return got, err
				}
			}
			return got, nil
		}
		serve(nc, read)
	}))
	t.Cleanup(s.Close)
	return "ws://" + s.Listener.Addr().String() + "/"
}

func TestConnProtocolErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		code  StatusCode
	}{
		{"masked frame from the server", AppendFrame(nil, OpBinary, []byte("x"), &rfcKey), StatusProtocolError},
		{"message over MaxMessage", AppendFrame(nil, OpBinary, make([]byte, 1025), nil), StatusMessageTooBig},
		{"text not UTF-8", AppendFrame(nil, OpText, []byte("\xff"), nil), StatusInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan []msg, 1)
			url := rawServer(t, func(nc net.Conn, read func() ([]msg, error)) {
				nc.Write(tt.frame)
				msgs, err := read()
				if err != nil {
					t.Error(err)
				}
				got <- msgs
			})
			c := dial(t, url, DialOptions{MaxMessage: 1024})
			_, _, err := c.Read(testContext(t))
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("Read: %v, want status %d", err, tt.code)
			}
			msgs := <-got
			if len(msgs) != 1 || msgs[0].op != OpClose {
				t.Fatalf("server got %v, want a close frame", msgs)
			}
			if code, _ := ParseClose([]byte(msgs[0].data)); code != tt.code {
				t.Fatalf("client closed with %v, want %v", code, tt.code)
			}
			if _, _, err2 := c.Read(testContext(t)); err2 != err {
				t.Fatalf("second Read: %v", err2)
			}
		})
	}
}

func TestConnAnswersPingsAndCloses(t *testing.T) {
	got := make(chan []msg, 1)
	url := rawServer(t, func(nc net.Conn, read func() ([]msg, error)) {
		// A ping between the fragments of a message, then a close.
		nc.Write(cat(
			AppendHeader(nil, OpBinary, false, 3, nil), []byte("fra"),
			AppendFrame(nil, OpPing, []byte("are you there"), nil),
			AppendHeader(nil, OpContinuation, true, 4, nil), []byte("gged"),
			AppendClose(nil, StatusGoingAway, "restart", nil),
		))
		var all []msg
		for len(all) < 2 {
			msgs, err := read()
			all = append(all, msgs...)
			if err != nil {
				break
			}
		}
		got <- all
	})
	c := dial(t, url, DialOptions{})
	ctx := testContext(t)
	if op, data, err := c.Read(ctx); err != nil || op != OpBinary || string(data) != "fragged" {
		t.Fatalf("Read: %v %q %v", op, data, err)
	}
	_, _, err := c.Read(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusGoingAway || ce.Reason != "restart" {
		t.Fatalf("Read: %v", err)
	}
	if all := <-got; len(all) != 2 || all[0] != (msg{OpPong, "are you there"}) || all[1].op != OpClose {
		t.Fatalf("server got %v, want the pong and the echoed close", all)
	} else if code, _ := ParseClose([]byte(all[1].data)); code != StatusGoingAway {
		t.Fatalf("echoed close status %v", code)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatalf("Close after the peer's close: %v", err)
	}
}

func TestConnCloseTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits CloseTimeout")
	}
	t.Parallel()
	url := rawServer(t, func(nc net.Conn, _ func() ([]msg, error)) {
		io.Copy(io.Discard, nc) // never answers the close
	})
	c := dial(t, url, DialOptions{})
	start := time.Now()
	err := c.Close(StatusNormalClosure, "")
	if err == nil || time.Since(start) < CloseTimeout || time.Since(start) > CloseTimeout+5*time.Second {
		t.Fatalf("Close returned %v after %v", err, time.Since(start))
	}
}

func TestConnPing(t *testing.T) {
	c := dial(t, ourServer(t, echo(make(chan error, 1))), DialOptions{})
	// Without a reader, the pong is never seen.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping without a reader: %v", err)
	}
	go c.Read(t.Context())
	for range 3 {
		if err := c.Ping(testContext(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	c.CloseNow()
	if err := c.Ping(testContext(t)); err == nil {
		t.Fatal("Ping after CloseNow succeeded")
	}
}

// countingConn counts the writes to a net.Conn.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func TestConnWriteBatchIsOneWrite(t *testing.T) {
	got := make(chan []msg, 1)
	url := rawServer(t, func(nc net.Conn, read func() ([]msg, error)) {
		var all []msg
		for len(all) < 100 {
			msgs, err := read()
			if err != nil {
				t.Error(err)
				break
			}
			all = append(all, msgs...)
		}
		got <- all
	})
	var writes atomic.Int64
	c := dial(t, url, DialOptions{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{nc, &writes}, err
	}})
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = payload(i)
	}
	before := writes.Load()
	if err := c.WriteBatch(testContext(t), OpBinary, batch); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 1 {
		t.Fatalf("WriteBatch made %d writes", n)
	}
	all := <-got
	for i, m := range all {
		if m.op != OpBinary || m.data != string(batch[i]) {
			t.Fatalf("message %d: %v of %d bytes", i, m.op, len(m.data))
		}
	}
}

func TestDialPipelinedFirstFrame(t *testing.T) {
	// A server that sends its first frame in the same write as its 101.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		nc.Write(append([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+AcceptKey(r.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n"),
			AppendFrame(nil, OpText, []byte("welcome"), nil)...))
		io.Copy(io.Discard, nc)
	}()
	c := dial(t, "ws://"+ln.Addr().String()+"/", DialOptions{})
	if c.pending == nil {
		t.Error("the first frame did not arrive with the response")
	}
	if op, data, err := c.Read(testContext(t)); err != nil || op != OpText || string(data) != "welcome" {
		t.Fatalf("Read: %v %q %v", op, data, err)
	}
}

func TestDialRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		if nc, _, err := Upgrade(w, r, UpgradeOptions{}); err == nil {
			nc.Close()
		}
	}))
	t.Cleanup(s.Close)
	h := http.Header{}
	h.Set("Origin", "http://"+s.Listener.Addr().String())
	h.Set("X-Test", "yes")
	h.Set("Sec-WebSocket-Extensions", "permessage-deflate") // dropped: never offered
	dial(t, "ws://"+s.Listener.Addr().String()+"/v1/websocket?x=1", DialOptions{Header: h})
	r := <-got
	if r.URL.RequestURI() != "/v1/websocket?x=1" || r.Header.Get("X-Test") != "yes" || r.Header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatalf("request %s %v", r.URL, r.Header)
	}
}

func TestDialErrors(t *testing.T) {
	var addrs []string
	refuse := func(_ context.Context, _, addr string) (net.Conn, error) {
		addrs = append(addrs, addr)
		return nil, errors.New("no network in this test")
	}
	for _, tt := range []struct {
		url  string
		addr string // "" if Dial must not dial
	}{
		{"ws://example.com/x", "example.com:80"},
		{"wss://example.com/x", "example.com:443"},
		{"ws://[::1]:8080", "[::1]:8080"},
		{"http://example.com/", ""},
		{"ws://example.com/#fragment", ""},
		{"ws://user:pass@example.com/", ""},
		{"ws:///path", ""},
		{"::", ""},
	} {
		addrs = nil
		if _, err := Dial(t.Context(), tt.url, DialOptions{NetDial: refuse}); err == nil {
			t.Errorf("%s: no error", tt.url)
		}
		if tt.addr == "" && len(addrs) != 0 || tt.addr != "" && (len(addrs) != 1 || addrs[0] != tt.addr) {
			t.Errorf("%s: dialled %v, want %q", tt.url, addrs, tt.addr)
		}
	}

	// A refused handshake gives its status.
	url := upgradeServer(t, nil, UpgradeOptions{}, func(net.Conn, []byte) {})
	h := http.Header{"Origin": {"https://evil.example"}}
	_, err := Dial(t.Context(), "ws://"+url+"/", DialOptions{Header: h})
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Fatalf("foreign origin: %v", err)
	}

	// A server that never answers: ctx bounds the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	t.Cleanup(func() {
		ln.Close()
		if nc := <-accepted; nc != nil {
			nc.Close()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", DialOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
}

func TestDialTLS(t *testing.T) {
	done := make(chan error, 1)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, buffered, err := Upgrade(w, r, UpgradeOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		c := NewConn(nc, buffered, Server, 0)
		defer c.CloseNow()
		echo(done)(r.Context(), c)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake this test fails on purpose
	s.StartTLS()
	t.Cleanup(s.Close)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	url := "wss://" + s.Listener.Addr().String() + "/"

	if _, err := Dial(testContext(t), url, DialOptions{}); err == nil {
		t.Fatal("Dial trusted a test certificate")
	}
	c := dial(t, url, DialOptions{TLSConfig: &tls.Config{RootCAs: roots}})
	ctx := testContext(t)
	if err := c.Write(ctx, OpText, []byte("over TLS")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "over TLS" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

func TestReadResponse(t *testing.T) {
	accept := AcceptKey(testKey)
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n"
	tests := []struct {
		name   string
		resp   string
		status int  // of the HandshakeError; 0 if none
		valid  bool // accepted
	}{
		{"valid", ok + "\r\n", 0, true},
		{"valid with a frame after", ok + "\r\n\x81\x02hi", 0, true},
		{"tokens in lists, any case", "HTTP/1.1 101 OK\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n", 0, true},
		{"403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 403, false},
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, false},
		{"HTTP/1.0", strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1) + "\r\n", 101, false},
		{"wrong accept", strings.Replace(ok, accept, AcceptKey("x"), 1) + "\r\n", 101, false},
		{"two accepts", ok + "Sec-WebSocket-Accept: " + accept + "\r\n\r\n", 101, false},
		{"no Upgrade", strings.Replace(ok, "Upgrade: websocket\r\n", "", 1) + "\r\n", 101, false},
		{"no Connection", strings.Replace(ok, "Connection: Upgrade\r\n", "", 1) + "\r\n", 101, false},
		{"extension", ok + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 101, false},
		{"subprotocol", ok + "Sec-WebSocket-Protocol: chat\r\n\r\n", 101, false},
		{"truncated", ok, 0, false},
		{"empty", "", 0, false},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, false},
		{"header too large", ok + "X-Padding: " + strings.Repeat("a", maxResponseHeader) + "\r\n\r\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, err := readResponse(strings.NewReader(tt.resp), testKey)
			if tt.valid {
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.resp[strings.Index(tt.resp, "\r\n\r\n")+4:]; string(rest) != want {
					t.Fatalf("rest %q, want %q", rest, want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var he *HandshakeError
			if got := errors.As(err, &he); got != (tt.status != 0) || got && he.Status != tt.status {
				t.Fatalf("got %v, want status %d", err, tt.status)
			}
		})
	}
}

// pieceReader returns the bytes of b in pieces of n.
type pieceReader struct {
	b    []byte
	n    int
	read int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.b[:min(r.n, len(r.b))])
	r.b = r.b[k:]
	r.read += k
	return k, nil
}

// FuzzResponse checks that readResponse never panics, reads at most
// maxResponseHeader bytes, gives the same result however the response is
// split, and accepts only a response with the right Sec-WebSocket-Accept,
// returning exactly the bytes after its header.
func FuzzResponse(f *testing.F) {
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(testKey) + "\r\n"
	f.Add([]byte(ok+"\r\n"), uint16(1))
	f.Add([]byte(ok+"\r\n\x81\x02hi"), uint16(7))
	f.Add([]byte(ok+"Sec-WebSocket-Extensions: x\r\n\r\n"), uint16(3))
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\n\r\n"), uint16(100))
	f.Fuzz(func(t *testing.T, resp []byte, piece uint16) {
		whole := &pieceReader{b: resp, n: len(resp) + 1}
		rest, err := readResponse(whole, testKey)
		if whole.read > maxResponseHeader {
			t.Fatalf("read %d bytes", whole.read)
		}
		split := &pieceReader{b: resp, n: 1 + int(piece)%64}
		rest2, err2 := readResponse(split, testKey)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("whole: %v; in pieces: %v", err, err2)
		}
		if err != nil {
			return
		}
		end := bytes.Index(resp, []byte("\r\n\r\n")) + 4
		if !bytes.Contains(resp[:end], []byte(AcceptKey(testKey))) {
			t.Fatal("accepted without the accept key")
		}
		if !bytes.Equal(rest, resp[end:whole.read]) {
			t.Fatalf("rest %q, want %q", rest, resp[end:whole.read])
		}
		if !bytes.Equal(rest2, resp[end:split.read]) {
			t.Fatalf("rest in pieces %q, want %q", rest2, resp[end:split.read])
		}
	})
}

// gatedConn counts writes once armed and holds the first of them until
// gate is closed.
type gatedConn struct {
	net.Conn
	armed  *atomic.Bool
	writes *atomic.Int64
	gate   chan struct{}
}

func (c gatedConn) Write(b []byte) (int, error) {
	if c.armed.Load() && c.writes.Add(1) == 1 {
		<-c.gate
	}
	return c.Conn.Write(b)
}

// queuedWriters waits until c has n frames queued behind a write.
func queuedWriters(t *testing.T, c *Conn, n uint64) {
	t.Helper()
	for {
		c.wmu.Lock()
		q := c.queued - c.written
		c.wmu.Unlock()
		if q >= n {
			return
		}
		if testContext(t).Err() != nil {
			t.Fatalf("%d frames queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConnConcurrentWritesCombine(t *testing.T) {
	const writers = 20
	got := make(chan []msg, 1)
	url := rawServer(t, func(nc net.Conn, read func() ([]msg, error)) {
		var all []msg
		for len(all) < writers {
			msgs, err := read()
			if err != nil {
				t.Error(err)
				break
			}
			all = append(all, msgs...)
		}
		got <- all
	})
	var writes atomic.Int64
	var armed atomic.Bool
	gate := make(chan struct{})
	c := dial(t, url, DialOptions{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return gatedConn{nc, &armed, &writes, gate}, err
	}})
	armed.Store(true) // the handshake's write does not count
	ctx := testContext(t)
	errs := make(chan error, writers)
	go func() { errs <- c.Write(ctx, OpBinary, []byte("leader")) }()
	queuedWriters(t, c, 1)
	for i := 1; i < writers; i++ {
		go func() { errs <- c.Write(ctx, OpBinary, payload(i)) }()
	}
	queuedWriters(t, c, writers)
	close(gate)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The leader's frame alone, then the 19 that queued behind it together.
	if n := writes.Load(); n != 2 {
		t.Fatalf("%d writers made %d writes, want 2", writers, n)
	}
	all := <-got
	if all[0].data != "leader" {
		t.Fatalf("first message %q, want the leader's", all[0].data)
	}
	seen := map[string]bool{}
	for _, m := range all[1:] {
		seen[m.data] = true
	}
	for i := 1; i < writers; i++ {
		if !seen[string(payload(i))] {
			t.Fatalf("message of writer %d missing", i)
		}
	}
}

func TestConnCancelledQueuedWriteClosesConn(t *testing.T) {
	url := rawServer(t, func(nc net.Conn, read func() ([]msg, error)) {
		for {
			if _, err := read(); err != nil {
				return
			}
		}
	})
	var writes atomic.Int64
	var armed atomic.Bool
	gate := make(chan struct{})
	defer close(gate)
	c := dial(t, url, DialOptions{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return gatedConn{nc, &armed, &writes, gate}, err
	}})
	armed.Store(true)
	leader := make(chan error, 1)
	go func() { leader <- c.Write(context.Background(), OpBinary, []byte("stuck")) }()
	queuedWriters(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// This frame waits behind a write that does not end: its deadline
	// passes, and since the frame could still go out half written, the
	// connection is closed.
	if err := c.Write(ctx, OpBinary, []byte("queued")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued write: %v, want the deadline", err)
	}
	if err := c.Write(context.Background(), OpBinary, []byte("after")); err == nil {
		t.Fatal("write after a cancelled one succeeded")
	}
	select {
	case <-c.done:
	default:
		t.Fatal("connection not closed")
	}
}
