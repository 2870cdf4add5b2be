package relay

import "sync"

// Worker pool limits, each with its reason.
const (
	// maxIdleWorkers bounds the goroutines kept waiting for work: enough
	// for the requests and writers of a busy moment (MaxInFlightPerConn
	// per connection, on a few connections at once), few enough that
	// their stacks stay a small fraction of what connections use.
	maxIdleWorkers = 256
)

// workers runs the relay's short tasks (a request, a connection's writer,
// a mailbox read) on goroutines that outlive them. A new goroutine starts
// on a small stack and grows it, copying, as the task goes deeper; a
// worker that ran such a task before already has the stack (4–5% of
// sottod's CPU at 10,000 msgs/s went to stack growth before the pool).
//
// Idle workers wait on a stack, most recently used on top, so the busy few
// stay warm; trim, called every few seconds, ends those that stayed idle
// the whole time since the last trim.
type workers struct {
	mu     sync.Mutex
	idle   []chan func() // each idle worker's task channel
	low    int           // fewest idle since the last trim
	closed bool
}

// Go runs f on an idle worker or a new one. It never blocks.
func (p *workers) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !p.closed {
		ch := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.low = min(p.low, len(p.idle))
		p.mu.Unlock()
		ch <- f // buffered: the worker is waiting or about to
		return
	}
	p.mu.Unlock()
	go p.run(make(chan func(), 1), f)
}

// run runs f, then whatever it is handed, until told to end (nil).
func (p *workers) run(ch chan func(), f func()) {
	for f != nil {
		f()
		f = nil // let the task be collected while the worker waits
		p.mu.Lock()
		if p.closed || len(p.idle) >= maxIdleWorkers {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		f = <-ch
	}
}

// trim ends the workers that stayed idle since the last trim: the bottom
// of the stack, which no Go has reached.
func (p *workers) trim() {
	p.mu.Lock()
	n := p.low
	for _, ch := range p.idle[:n] {
		ch <- nil
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle):cap(p.idle)])
	p.low = len(p.idle)
	p.mu.Unlock()
}

// close ends every idle worker and every busy one when its task is done.
func (p *workers) close() {
	p.mu.Lock()
	p.closed = true
	for _, ch := range p.idle {
		ch <- nil
	}
	p.idle = nil
	p.low = 0
	p.mu.Unlock()
}
