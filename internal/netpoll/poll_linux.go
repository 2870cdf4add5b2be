//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller reads connections from one goroutine per shard.
type Poller struct {
	shards []*shard
	next   atomic.Uint32
}

// shard is one epoll instance and the goroutine that waits on it.
//
// The goroutine never blocks in epoll_wait: it asks with a timeout of 0,
// and when nothing is ready it parks in Go's own poller until the epoll
// descriptor (itself pollable) turns readable. A goroutine blocked in a
// system call holds a thread, which the runtime notices only by polling
// (sysmon, every 20 µs while any is blocked) and then replaces with
// another; parking costs neither.
type shard struct {
	epfd   int
	ep     *os.File // epfd, registered with Go's poller
	eprc   syscall.RawConn
	wakefd int // an eventfd: written by Close to end the loop
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	nextID  uint64
	watches map[uint64]*watched
}

// watched is a registered connection. Events carry its id, not its file
// descriptor, so that a number the kernel reuses after a close never
// reaches the wrong connection.
type watched struct {
	w      *Watch
	rc     syscall.RawConn
	fd     int
	paused bool // out of the epoll set (guarded by shard.mu)
}

// wakeID is the event id of the shard's eventfd.
const wakeID = 0

// New starts a poller with n shards (n <= 0: one per CPU the Go runtime
// uses).
func New(n int) (*Poller, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Poller{}
	for range n {
		s, err := newShard()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.shards = append(p.shards, s)
	}
	return p, nil
}

func newShard() (*shard, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with Go's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: epoll descriptor: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll") // owns epfd from here on
	eprc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: epoll descriptor: %w", err)
	}
	s := &shard{epfd: epfd, ep: ep, eprc: eprc, wakefd: wakefd, done: make(chan struct{}),
		nextID: wakeID + 1, watches: map[uint64]*watched{}}
	go s.loop()
	return s, nil
}

// The event's 64 data bits hold the id (EpollEvent splits them in two).
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Add starts reading c. A connection that is not a plain socket (TLS, a
// pipe) gets a reader goroutine instead.
func (p *Poller) Add(c net.Conn, cb Callbacks) (*Watch, error) {
	sc, ok := c.(syscall.Conn)
	if !ok || p == nil {
		return fallback(c, cb), nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	s := p.shards[int(p.next.Add(1))%len(p.shards)]
	return s.add(rc, cb)
}

func (s *shard) add(rc syscall.RawConn, cb Callbacks) (*Watch, error) {
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	w := &Watch{cb: cb}
	x := &watched{w: w, rc: rc, fd: fd}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	id := s.nextID
	s.nextID++
	ev := unix.EpollEvent{Events: readEvents}
	setID(&ev, id)
	// The descriptor is registered while the connection is open: the
	// caller removes the watch before it closes the connection.
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return nil, fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	s.watches[id] = x
	w.remove = func() { s.remove(id) }
	w.pause = func(pause bool) bool { return s.pause(id, pause) }
	return w, nil
}

// readEvents are what a watched connection waits for.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

// pause stops (or restarts) the events of one connection: a paused
// descriptor leaves the epoll set, so that not even a hang-up is reported
// until it is resumed.
func (s *shard) pause(id uint64, pause bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.watches[id]
	if !ok || x.paused == pause {
		return ok
	}
	x.paused = pause
	if pause {
		return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, x.fd, nil) == nil
	}
	ev := unix.EpollEvent{Events: readEvents}
	setID(&ev, id)
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, x.fd, &ev) == nil
}

func (s *shard) remove(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.watches[id]
	if !ok {
		return
	}
	delete(s.watches, id)
	if !x.paused {
		// The connection is still open (see add), so its descriptor
		// is still its own.
		_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, x.fd, nil)
	}
}

func (s *shard) loop() {
	defer close(s.done)
	events := make([]unix.EpollEvent, maxEvents)
	buf := make([]byte, readBufferSize)
	for {
		n, err := s.wait(events)
		if err != nil {
			return
		}
		for i := range n {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			s.mu.Lock()
			x := s.watches[id]
			s.mu.Unlock()
			if x != nil {
				s.read(id, x, buf)
			}
		}
	}
}

// wait returns the ready events, parking in Go's poller while there are
// none (see shard).
func (s *shard) wait(events []unix.EpollEvent) (int, error) {
	var (
		n    int
		werr error
	)
	err := s.eprc.Read(func(uintptr) bool {
		n, werr = unix.EpollWait(s.epfd, events, 0)
		if errors.Is(werr, unix.EINTR) {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil // false: wait until readable
	})
	if err != nil {
		return 0, fmt.Errorf("netpoll: wait: %w", err)
	}
	if werr != nil {
		return 0, fmt.Errorf("netpoll: epoll_wait: %w", werr)
	}
	return n, nil
}

// read reads what one ready connection has (up to the buffer) and hands it
// on. Level-triggered epoll reports the connection again if more is left.
func (s *shard) read(id uint64, x *watched, buf []byte) {
	var (
		n    int
		rerr error
	)
	err := x.rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return true // never wait: epoll said it is readable
	})
	if err == nil {
		err = rerr
	}
	switch {
	case errors.Is(err, unix.EAGAIN):
		return // spurious wake-up
	case err == nil && n == 0:
		err = io.EOF
	case err == nil:
		if err = x.w.cb.OnData(buf[:n]); err == nil {
			return
		}
	}
	s.remove(id)
	x.w.finish(err)
}

// Close stops every shard; watches still registered get no more calls.
func (p *Poller) Close() {
	for _, s := range p.shards {
		s.mu.Lock()
		already := s.closed
		s.closed = true
		s.mu.Unlock()
		if already {
			continue
		}
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		_, _ = unix.Write(s.wakefd, one)
		<-s.done
		s.ep.Close()
		unix.Close(s.wakefd)
	}
}

// CanWriteNow says whether WriteNow works here.
const CanWriteNow = true

// WriteNow writes b to a non-blocking socket as far as its buffer takes it
// without waiting, and returns how much it wrote: less than len(b), with
// no error, when the buffer is full.
func WriteNow(rc syscall.RawConn, b []byte) (int, error) {
	var (
		n    int
		werr error
	)
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := unix.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				if !errors.Is(err, unix.EAGAIN) {
					werr = err
				}
				break
			}
		}
		return true // never wait: the caller hands the rest on
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
