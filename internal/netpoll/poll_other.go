//go:build !linux

package netpoll

import (
	"errors"
	"net"
	"syscall"
)

// Poller falls back to a reader goroutine per connection where there is
// no epoll.
type Poller struct{}

// New returns a poller; n is ignored.
func New(n int) (*Poller, error) { return &Poller{}, nil }

// Add starts reading c on a goroutine of its own.
func (p *Poller) Add(c net.Conn, cb Callbacks) (*Watch, error) { return fallback(c, cb), nil }

// Close does nothing: each reader ends with its connection.
func (p *Poller) Close() {}

// CanWriteNow says whether WriteNow works here.
const CanWriteNow = false

// WriteNow is not available here (see CanWriteNow).
func WriteNow(rc syscall.RawConn, b []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
