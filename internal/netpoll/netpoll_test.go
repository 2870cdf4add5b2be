package netpoll

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// recorder collects what a watch delivers.
type recorder struct {
	mu     sync.Mutex
	data   bytes.Buffer
	closed chan error
	fail   error // OnData's answer once set
}

func newRecorder() *recorder { return &recorder{closed: make(chan error, 1)} }

func (r *recorder) callbacks() Callbacks {
	return Callbacks{
		OnData: func(b []byte) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.data.Write(b)
			return r.fail
		},
		OnClose: func(err error) { r.closed <- err },
	}
}

func (r *recorder) waitFor(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		if r.data.Len() >= n {
			out := bytes.Clone(r.data.Bytes())
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("got %d bytes, want %d", r.data.Len(), n)
	return nil
}

func (r *recorder) waitClose(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.closed:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose not called")
		return nil
	}
}

func modes(t *testing.T) map[string]*Poller {
	p, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return map[string]*Poller{"poller": p, "fallback": nil}
}

// TestDataAndEOF: everything written arrives in order, in any pieces, and
// an orderly close ends the watch with io.EOF.
func TestDataAndEOF(t *testing.T) {
	for name, p := range modes(t) {
		t.Run(name, func(t *testing.T) {
			client, server := pair(t)
			r := newRecorder()
			if _, err := p.Add(server, r.callbacks()); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 300_000) // several buffers' worth
			for i := range want {
				want[i] = byte(i * 7)
			}
			go func() {
				for b := want; len(b) > 0; {
					n := min(len(b), 1000)
					client.Write(b[:n])
					b = b[n:]
				}
				client.Close()
			}()
			if got := r.waitFor(t, len(want)); !bytes.Equal(got, want) {
				t.Fatal("bytes differ")
			}
			if err := r.waitClose(t); !errors.Is(err, io.EOF) {
				t.Fatalf("OnClose(%v), want EOF", err)
			}
		})
	}
}

// TestDataError: an error from OnData ends reading with that error.
func TestDataError(t *testing.T) {
	boom := errors.New("boom")
	for name, p := range modes(t) {
		t.Run(name, func(t *testing.T) {
			client, server := pair(t)
			r := newRecorder()
			r.fail = boom
			if _, err := p.Add(server, r.callbacks()); err != nil {
				t.Fatal(err)
			}
			client.Write([]byte("x"))
			if err := r.waitClose(t); !errors.Is(err, boom) {
				t.Fatalf("OnClose(%v), want %v", err, boom)
			}
		})
	}
}

// TestRemove: after Remove, OnClose(nil) has run once and later input is
// not delivered.
func TestRemove(t *testing.T) {
	p, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, server := pair(t)
	r := newRecorder()
	w, err := p.Add(server, r.callbacks())
	if err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("a"))
	r.waitFor(t, 1)
	w.Remove()
	if err := r.waitClose(t); err != nil {
		t.Fatalf("OnClose(%v), want nil", err)
	}
	w.Remove() // twice is harmless
	client.Write([]byte("b"))
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data.String() != "a" {
		t.Fatalf("got %q after Remove", r.data.String())
	}
	select {
	case err := <-r.closed:
		t.Fatalf("second OnClose(%v)", err)
	default:
	}
}

// TestManyConnections: one shard serves many connections, each getting its
// own bytes, and Close refuses new ones.
func TestManyConnections(t *testing.T) {
	p, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	clients := make([]net.Conn, n)
	recs := make([]*recorder, n)
	for i := range n {
		c, s := pair(t)
		clients[i], recs[i] = c, newRecorder()
		if _, err := p.Add(s, recs[i].callbacks()); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		c.Write([]byte{byte(i), byte(i >> 8)})
	}
	for i, r := range recs {
		if got := r.waitFor(t, 2); !bytes.Equal(got, []byte{byte(i), byte(i >> 8)}) {
			t.Fatalf("connection %d got %v", i, got)
		}
	}
	p.Close()
	p.Close()
	_, s := pair(t)
	if _, err := p.Add(s, newRecorder().callbacks()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
}

// TestPipeFallsBack: a connection that is not a socket is read by a
// goroutine of its own.
func TestPipeFallsBack(t *testing.T) {
	p, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, b := net.Pipe()
	r := newRecorder()
	if _, err := p.Add(b, r.callbacks()); err != nil {
		t.Fatal(err)
	}
	go func() { a.Write([]byte("hello")); a.Close() }()
	if got := r.waitFor(t, 5); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	if err := r.waitClose(t); !errors.Is(err, io.EOF) {
		t.Fatalf("OnClose(%v)", err)
	}
}

// TestPause: nothing is delivered while paused, everything after Resume.
func TestPause(t *testing.T) {
	for name, p := range modes(t) {
		t.Run(name, func(t *testing.T) {
			client, server := pair(t)
			r := newRecorder()
			w, err := p.Add(server, r.callbacks())
			if err != nil {
				t.Fatal(err)
			}
			client.Write([]byte("a"))
			r.waitFor(t, 1)
			w.Pause()
			w.Pause()
			client.Write([]byte("b"))
			client.Close() // not even the hang-up is seen while paused
			time.Sleep(50 * time.Millisecond)
			r.mu.Lock()
			got := r.data.String()
			r.mu.Unlock()
			// The fallback reader may be inside Read when paused: it
			// delivers that one read, then waits.
			if name == "poller" && got != "a" {
				t.Fatalf("got %q while paused", got)
			}
			select {
			case err := <-r.closed:
				if name == "poller" {
					t.Fatalf("OnClose(%v) while paused", err)
				}
				r.closed <- err
			default:
			}
			w.Resume()
			w.Resume()
			if got := r.waitFor(t, 2); string(got) != "ab" {
				t.Fatalf("got %q after Resume", got)
			}
			if err := r.waitClose(t); !errors.Is(err, io.EOF) {
				t.Fatalf("OnClose(%v)", err)
			}
		})
	}
}

// TestRemoveFromOnClose: an OnClose that removes its own watch (as a
// connection's cleanup does when a read fails) returns, in both modes, and
// OnClose runs once.
func TestRemoveFromOnClose(t *testing.T) {
	for name, p := range modes(t) {
		t.Run(name, func(t *testing.T) {
			client, server := pair(t)
			var (
				w     *Watch
				ready = make(chan struct{})
				calls = make(chan error, 2)
			)
			w, err := p.Add(server, Callbacks{
				OnData: func([]byte) error { return nil },
				OnClose: func(err error) {
					<-ready
					w.Remove()
					calls <- err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			close(ready)
			client.Close()
			select {
			case err := <-calls:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("OnClose(%v), want EOF", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("OnClose did not return: Remove inside it deadlocked")
			}
			w.Remove()
			select {
			case err := <-calls:
				t.Fatalf("second OnClose(%v)", err)
			case <-time.After(20 * time.Millisecond):
			}
		})
	}
}
