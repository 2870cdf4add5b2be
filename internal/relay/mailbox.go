package relay

import (
	"cmp"
	"slices"
	"sync"

	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/ws"
)

// mailbox pushes one device's envelopes on one connection, in id order.
//
// Envelopes reach it two ways. A Send on this node hands the envelopes it
// has just stored to offer, which pushes them at once when they follow the
// last one pushed: no read from the store. Anything else (the first drain,
// a gap, a connection that is behind, a signal from another node) starts a
// goroutine that reads the store after the last id pushed, and ends when
// the mailbox has been read to its end with no new signal. An idle
// connection holds no goroutine for delivery.
type mailbox struct {
	c      *conn
	d      bus.Device
	cancel func() // ends the bus subscription

	mu      sync.Mutex // guards the fields below
	running bool       // a reading goroutine is running
	again   bool       // a signal came while it ran
	after   store.EnvelopeID
	drained bool // QueueEmpty has been sent
}

// startMailbox subscribes to the device's signals and pushes what is
// already waiting.
func (c *conn) startMailbox(d bus.Device) *mailbox {
	// running from the start: signals before the first drain only ask
	// it to read again.
	m := &mailbox{c: c, d: d, running: true}
	m.cancel = c.r.cfg.Bus.Subscribe(d, m.signal)
	go func() {
		c.checkPreKeys(d)
		m.run()
	}()
	return m
}

// signal is the bus callback: the mailbox holds envelopes up to last. It
// never blocks.
func (m *mailbox) signal(last store.EnvelopeID) {
	m.mu.Lock()
	if m.drained && last <= m.after {
		m.mu.Unlock()
		return // already pushed (offered directly)
	}
	if m.running {
		m.again = true
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	m.c.r.workers.Go(m.run)
}

// offer pushes envelopes just stored for this device, in id order, if they
// follow the last one pushed and the connection keeps up; otherwise the
// bus signal that follows has the reader fetch them.
func (m *mailbox) offer(envs []*store.Envelope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running || !m.drained || envs[0].ID != m.after+1 || !m.c.writable() {
		return
	}
	m.c.pushEnvelopes(envs)
	m.after = envs[len(envs)-1].ID
}

func (m *mailbox) stop() { m.cancel() }

func (m *mailbox) run() {
	for {
		m.read()
		m.mu.Lock()
		if !m.again || m.c.ctx.Err() != nil {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// read pushes every stored envelope after the last one pushed, then
// QueueEmpty the first time the mailbox is found empty.
func (m *mailbox) read() {
	c := m.c
	m.mu.Lock()
	after := m.after
	m.mu.Unlock()
	for {
		envs, err := c.r.cfg.Store.Read(c.ctx, m.d.Account, m.d.Device, after, wire.MaxEnvelopesPerPush)
		if err != nil {
			if c.ctx.Err() == nil {
				c.r.log.Warn("read mailbox", "err", err)
			}
			return
		}
		if len(envs) == 0 {
			break
		}
		ptrs := make([]*store.Envelope, len(envs))
		for i := range envs {
			ptrs[i] = &envs[i]
		}
		// One push frame at a time, each after the peer has read
		// enough: what waits for a slow reader stays under
		// pushHighWater plus one frame.
		for batch := range pushBatches(ptrs) {
			if !c.waitWritable() {
				return
			}
			c.pushEnvelopes(batch)
			after = batch[len(batch)-1].ID
			m.mu.Lock()
			m.after = after
			m.mu.Unlock()
		}
		if len(envs) < wire.MaxEnvelopesPerPush {
			break // a short read reached the end: no need to read nothing
		}
	}
	m.mu.Lock()
	first := !m.drained
	m.drained = true
	m.mu.Unlock()
	if first {
		c.push(&wirepb.QueueEmpty{})
	}
}

// pushEnvelopes queues envelopes to be pushed, in order. They are encoded
// when the writer next runs, together with any queued after them: under
// load one push frame carries many envelopes (and the device acks them in
// one request), where encoding at once would make a frame of each Send's.
func (c *conn) pushEnvelopes(envs []*store.Envelope) {
	n := 0
	for _, e := range envs {
		n += len(e.Content) + envelopeOverhead
	}
	c.out.Lock()
	if c.closing || c.closed {
		c.out.Unlock()
		return
	}
	c.pending = append(c.pending, envs...)
	c.pendingBytes += n
	over := len(c.outBuf)+c.pendingBytes > maxOutput
	c.kickLocked()
	c.out.Unlock()
	c.r.m.envelopesOut.Add(uint64(len(envs)))
	if over {
		c.r.log.Debug("peer not reading: dropping connection")
		c.end()
	}
}

// encodePendingLocked appends the pending envelopes to outBuf as push
// frames of at most pushBudget bytes each. c.out is held.
func (c *conn) encodePendingLocked() {
	if len(c.pending) == 0 {
		return
	}
	for batch := range pushBatches(c.pending) {
		out := &wirepb.Envelopes{Envelopes: make([]*wirepb.Envelope, len(batch))}
		for i, e := range batch {
			out.Envelopes[i] = &wirepb.Envelope{Id: uint64(e.ID), Content: e.Content}
		}
		b, err := wire.Encode(wire.NewPush(out))
		if err != nil {
			c.r.log.Error("encode push", "err", err)
			continue
		}
		c.outBuf = ws.AppendFrame(c.outBuf, ws.OpBinary, b, nil)
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	if cap(c.pending) > maxPendingKept {
		c.pending = nil
	}
	c.pendingBytes = 0
}

// maxPendingKept is the largest pending list kept for reuse.
const maxPendingKept = 1024

// pushBudget is how many bytes of envelope content one push may carry: a
// frame is at most wire.MaxFrameSize, and each envelope adds a few bytes of
// framing (an id and two lengths), budgeted at envelopeOverhead.
const (
	envelopeOverhead = 24
	pushBudget       = wire.MaxFrameSize - 1<<10
)

// pushBatches splits envelopes into runs that each fit in one push frame:
// at most wire.MaxEnvelopesPerPush envelopes and pushBudget bytes (a single
// envelope always fits: contents are at most wire.MaxContentSize).
func pushBatches(envs []*store.Envelope) func(yield func([]*store.Envelope) bool) {
	return func(yield func([]*store.Envelope) bool) {
		start, size := 0, 0
		for i, e := range envs {
			n := len(e.Content) + envelopeOverhead
			if i > start && (size+n > pushBudget || i-start == wire.MaxEnvelopesPerPush) {
				if !yield(envs[start:i]) {
					return
				}
				start, size = i, 0
			}
			size += n
		}
		yield(envs[start:])
	}
}

// deliver hands envelopes just stored to this node's connections of their
// devices, then signals the bus (other nodes, and local connections that
// could not take them directly).
func (r *Relay) deliver(envs []*store.Envelope) {
	// Group by device, in id order: one Send names a device once, but a
	// store may interleave mailboxes. Most sends come in order already
	// (one device, or one envelope each), and are not copied.
	byEnvelope := func(a, b *store.Envelope) int {
		if c := slices.Compare(a.Account[:], b.Account[:]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Device, b.Device); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	sorted := envs
	if !slices.IsSortedFunc(envs, byEnvelope) {
		sorted = slices.Clone(envs)
		slices.SortFunc(sorted, byEnvelope)
	}
	var signalBuf [4]bus.Signal
	var connBuf [4]*conn
	signals := signalBuf[:0]
	for start := 0; start < len(sorted); {
		end := start + 1
		d := bus.Device{Account: sorted[start].Account, Device: sorted[start].Device}
		for end < len(sorted) && sorted[end].Account == d.Account && sorted[end].Device == d.Device {
			end++
		}
		for _, c := range r.appendConnsOf(connBuf[:0], d) {
			if mb := c.currentMailbox(); mb != nil {
				mb.offer(sorted[start:end])
			}
		}
		signals = append(signals, bus.Signal{Device: d, Last: sorted[end-1].ID})
		start = end
	}
	r.cfg.Bus.Notify(signals...)
}

// checkPreKeys tells the device when it runs low on one-time prekeys.
func (c *conn) checkPreKeys(d bus.Device) {
	ec, kem, err := c.r.cfg.Store.CountPreKeys(c.ctx, d.Account, d.Device)
	if err != nil {
		return
	}
	if ec < PreKeysLowWater || kem < PreKeysLowWater {
		c.push(&wirepb.PreKeysLow{Ec: uint32(ec), Kem: uint32(kem)})
	}
}

// currentMailbox returns the connection's mailbox, if it has one.
func (c *conn) currentMailbox() *mailbox {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mailbox
}
