// Package bus tells the connection of a device that its mailbox has new
// envelopes. A node with one process uses [Local]; a cluster will carry the
// same signal between nodes (over NATS) behind the same [Bus] interface.
//
// The signal carries no envelope and no sender: only "device D of account A
// has mail". A subscriber then reads its mailbox from the store, so a lost
// or coalesced signal delays delivery but never loses an envelope.
package bus

import (
	"sync"

	"github.com/sotto-chat/sotto/internal/store"
)

// Device names one device's mailbox.
type Device struct {
	Account store.AccountID
	Device  store.DeviceID
}

// Bus delivers "has mail" signals.
type Bus interface {
	// Subscribe returns a channel that receives a value whenever the
	// device's mailbox may have new envelopes (signals coalesce: at most one
	// is pending), and a function that ends the subscription. A device may
	// have several subscribers (a replaced connection overlaps its old one).
	Subscribe(d Device) (<-chan struct{}, func())
	// Notify signals every subscriber of each device.
	Notify(ds ...Device)
}

// Local is the in-process Bus. The zero value is ready to use.
type Local struct {
	mu   sync.Mutex
	subs map[Device]map[chan struct{}]struct{}
}

var _ Bus = (*Local)(nil)

// Subscribe implements Bus.
func (l *Local) Subscribe(d Device) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	if l.subs == nil {
		l.subs = map[Device]map[chan struct{}]struct{}{}
	}
	if l.subs[d] == nil {
		l.subs[d] = map[chan struct{}]struct{}{}
	}
	l.subs[d][ch] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs[d], ch)
			if len(l.subs[d]) == 0 {
				delete(l.subs, d)
			}
			l.mu.Unlock()
		})
	}
}

// Notify implements Bus. It never blocks.
func (l *Local) Notify(ds ...Device) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		for ch := range l.subs[d] {
			select {
			case ch <- struct{}{}:
			default: // a signal is already pending
			}
		}
	}
}

// Subscribers returns how many subscriptions are open (for metrics).
func (l *Local) Subscribers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.subs {
		n += len(s)
	}
	return n
}
