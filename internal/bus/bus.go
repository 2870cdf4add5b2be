// Package bus tells the connection of a device that its mailbox has new
// envelopes. A node with one process uses [Local]; a cluster will carry the
// same signal between nodes (over NATS) behind the same [Bus] interface.
//
// The signal carries no envelope and no sender: only "device D of account A
// has mail up to envelope id N". A subscriber then reads its mailbox from
// the store, so a lost or coalesced signal delays delivery but never loses
// an envelope; the id lets a subscriber that has already pushed that far
// (the relay hands envelopes it has just stored to local connections
// directly) skip the read.
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

// Signal says that a device's mailbox holds envelopes up to id Last.
type Signal struct {
	Device
	Last store.EnvelopeID
}

// Bus delivers "has mail" signals.
type Bus interface {
	// Subscribe calls fn with the signal's Last id whenever the device's
	// mailbox may have new envelopes, until the returned cancel is called.
	// fn must not block (it runs on the notifier's goroutine). A device
	// may have several subscribers (a replaced connection overlaps its old
	// one).
	Subscribe(d Device, fn func(last store.EnvelopeID)) (cancel func())
	// Notify signals every subscriber of each signal's device.
	Notify(ss ...Signal)
}

// Local is the in-process Bus. The zero value is ready to use.
type Local struct {
	mu     sync.Mutex
	nextID uint64
	subs   map[Device]map[uint64]func(store.EnvelopeID)
}

var _ Bus = (*Local)(nil)

// Subscribe implements Bus.
func (l *Local) Subscribe(d Device, fn func(last store.EnvelopeID)) func() {
	l.mu.Lock()
	if l.subs == nil {
		l.subs = map[Device]map[uint64]func(store.EnvelopeID){}
	}
	if l.subs[d] == nil {
		l.subs[d] = map[uint64]func(store.EnvelopeID){}
	}
	l.nextID++
	id := l.nextID
	l.subs[d][id] = fn
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs[d], id)
			if len(l.subs[d]) == 0 {
				delete(l.subs, d)
			}
			l.mu.Unlock()
		})
	}
}

// Notify implements Bus. The callbacks run after the bus's lock is released,
// so a callback may subscribe or cancel.
func (l *Local) Notify(ss ...Signal) {
	type call struct {
		fn   func(store.EnvelopeID)
		last store.EnvelopeID
	}
	var calls []call
	l.mu.Lock()
	for _, s := range ss {
		for _, fn := range l.subs[s.Device] {
			calls = append(calls, call{fn, s.Last})
		}
	}
	l.mu.Unlock()
	for _, c := range calls {
		c.fn(c.last)
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
