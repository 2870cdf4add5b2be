//go:build !linux

package netpoll

import "net"

// Poller falls back to a reader goroutine per connection where there is
// no epoll.
type Poller struct{}

// New returns a poller; n is ignored.
func New(n int) (*Poller, error) { return &Poller{}, nil }

// Add starts reading c on a goroutine of its own.
func (p *Poller) Add(c net.Conn, cb Callbacks) (*Watch, error) { return fallback(c, cb), nil }

// Close does nothing: each reader ends with its connection.
func (p *Poller) Close() {}
