package relay

import (
	"crypto/rand"
	"sync"
	"time"
)

// pending is a bounded in-memory table of single-use secrets (link tokens,
// provisioning addresses) with expiry. It is safe for concurrent use.
type pending[V any] struct {
	max   int
	mu    sync.Mutex
	items map[string]pendingItem[V]
	order []string // insertion order, for dropping the oldest
}

type pendingItem[V any] struct {
	v       V
	expires time.Time
}

func newPending[V any](max int) *pending[V] {
	return &pending[V]{max: max, items: map[string]pendingItem[V]{}}
}

// add stores v under a new random key of n bytes and returns the key.
func (p *pending[V]) add(n int, v V, expires time.Time) []byte {
	key := make([]byte, n)
	rand.Read(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.items) >= p.max && len(p.order) > 0 {
		delete(p.items, p.order[0])
		p.order = p.order[1:]
	}
	p.items[string(key)] = pendingItem[V]{v: v, expires: expires}
	p.order = append(p.order, string(key))
	return key
}

// take removes and returns the value under key if it has not expired.
func (p *pending[V]) take(key []byte, now time.Time) (V, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it, ok := p.items[string(key)]
	delete(p.items, string(key))
	if len(p.order) > 2*p.max { // compact the order list of taken keys
		kept := p.order[:0]
		for _, k := range p.order {
			if _, live := p.items[k]; live {
				kept = append(kept, k)
			}
		}
		p.order = kept
	}
	if !ok || !now.Before(it.expires) {
		var zero V
		return zero, false
	}
	return it.v, true
}

// remove deletes key if present.
func (p *pending[V]) remove(key []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.items, string(key))
}
