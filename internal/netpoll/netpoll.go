// Package netpoll reads many connections from a few goroutines, so that an
// idle connection costs its state and nothing else: no goroutine blocked in
// Read, no read buffer.
//
// On Linux a Poller waits on epoll (level-triggered) and, when a socket has
// bytes, reads them into the poller's one buffer and hands them to the
// connection's callback, inline. Elsewhere, and for connections that are
// not plain sockets (TLS), Add falls back to one reader goroutine per
// connection with a small buffer of its own. Writes are not its business:
// callers write with net.Conn.Write, through Go's own poller.
package netpoll

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Sizes, each with its reason.
const (
	// readBufferSize is the poller's one read buffer: a large push or a
	// pipeline of requests arrives in a few reads, and it is one buffer per
	// poller, not per connection.
	readBufferSize = 64 << 10
	// fallbackBufferSize is a fallback reader's buffer, one per connection:
	// small, because it is held for the connection's life.
	fallbackBufferSize = 4 << 10
	// maxEvents is how many ready connections one wait returns.
	maxEvents = 256
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("netpoll: poller closed")

// Callbacks receive one connection's input. OnData gets the bytes read,
// valid only during the call; an error from it ends reading. OnClose is
// called once, when reading ends (io.EOF for an orderly close, OnData's
// error, or a read error) or the watch is removed (nil). Both run on the
// poller's goroutine and must not block.
type Callbacks struct {
	OnData  func(b []byte) error
	OnClose func(err error)
}

// Watch is one connection being read.
type Watch struct {
	cb     Callbacks
	ended  atomic.Bool     // OnClose has been called (or is running)
	remove func()          // unregisters (nil in fallback mode)
	pause  func(bool) bool // stops or restarts reading; false if removed

	// Fallback mode: the reader goroutine waits while paused.
	mu      sync.Mutex
	paused  bool
	resumed chan struct{} // closed by Resume while the reader waits
}

// finish calls OnClose once. A second caller returns at once rather than
// wait for the first one's OnClose: a callback that removes the watch (and
// a Remove that races with a failed read) must not deadlock.
func (w *Watch) finish(err error) {
	if w.ended.CompareAndSwap(false, true) {
		w.cb.OnClose(err)
	}
}

// Remove stops reading the connection and calls OnClose(nil) unless reading
// has already ended. Call it before closing the connection. One more OnData
// may already be running when it returns, and so may an OnClose with a read
// error (Remove does not wait for it).
func (w *Watch) Remove() {
	if w.remove != nil {
		w.remove()
	}
	w.finish(nil)
}

// Pause stops reading the connection until Resume: a connection whose
// requests are not keeping up is left in its socket buffer, so that TCP
// slows the peer down, instead of in the server's memory.
func (w *Watch) Pause() {
	if w.pause != nil {
		w.pause(true)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.paused {
		w.paused = true
		w.resumed = make(chan struct{})
	}
}

// Resume undoes Pause.
func (w *Watch) Resume() {
	if w.pause != nil {
		w.pause(false)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused {
		w.paused = false
		close(w.resumed)
	}
}

// wait blocks a fallback reader while the watch is paused.
func (w *Watch) wait() {
	w.mu.Lock()
	ch := w.resumed
	paused := w.paused
	w.mu.Unlock()
	if paused {
		<-ch
	}
}

// fallback reads c on a goroutine of its own.
func fallback(c net.Conn, cb Callbacks) *Watch {
	w := &Watch{cb: cb}
	go func() {
		buf := make([]byte, fallbackBufferSize)
		for {
			w.wait()
			n, err := c.Read(buf)
			if n > 0 {
				if derr := cb.OnData(buf[:n]); derr != nil {
					w.finish(derr)
					return
				}
			}
			if err != nil {
				w.finish(err)
				return
			}
		}
	}()
	return w
}
