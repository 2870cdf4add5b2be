// Package ratelimit holds sottod's abuse limits: token buckets kept in
// memory only, keyed by whatever the caller chooses (a connection's source
// address, an account id). Nothing here is ever written to disk or logged,
// which is how the server limits abuse without recording who its users are
// (DESIGN.md, P4).
//
// Memory is bounded: a Limiter keeps at most MaxKeys buckets and forgets the
// least recently used one to make room. A forgotten bucket starts full, so
// the bound can only make the limit more lenient for a key that was idle
// while many others were active.
package ratelimit

import (
	"container/list"
	"sync"
	"time"
)

// MaxKeys bounds the buckets one Limiter holds: at about 150 bytes each, a
// million keys is ~150 MB, more than any honest load needs and a fixed cost
// under a flood of new keys.
const MaxKeys = 1 << 20

// Limiter allows Burst events at once and Rate events per second on
// average, per key. It is safe for concurrent use.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element
	lru     *list.List // front = most recently used
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// New returns a limiter of rate events per second with the given burst,
// holding at most maxKeys buckets (0 means MaxKeys). now is the clock.
func New(rate float64, burst int, maxKeys int, now func() time.Time) *Limiter {
	if maxKeys <= 0 || maxKeys > MaxKeys {
		maxKeys = MaxKeys
	}
	return &Limiter{rate: rate, burst: float64(burst), max: maxKeys, now: now,
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// Allow takes one token from key's bucket. If there is none it returns false
// and how long until there will be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
		b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	} else {
		if l.lru.Len() >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.buckets, old.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate <= 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// Len returns how many keys are tracked (for metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
