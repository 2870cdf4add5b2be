package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// ErrNotFound is returned by a Store's Get for a key it does not hold.
var ErrNotFound = errors.New("client: not found")

// Store keeps a client's state: its keys, sessions, contacts and history.
// Keys are strings in an order the client relies on (Scan returns them
// sorted); values are opaque bytes. Apply writes a set of changes all or
// none. Implementations: NewMemoryStore here; an encrypted SQLite file for
// native builds and IndexedDB for the web client behind the same interface.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// Scan calls fn for every key with the prefix, in key order, until
	// fn returns an error (which Scan returns).
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
	// Apply makes every write, atomically.
	Apply(ctx context.Context, writes []Write) error
	Close() error
}

// Write is one change: Value nil deletes Key.
type Write struct {
	Key   string
	Value []byte
}

// MemoryStore is a Store in memory, for tests and for clients that keep
// nothing (bots that start fresh). It is safe for concurrent use. Keys are
// also kept sorted, so that a Scan costs the keys it returns, not the
// whole store.
type MemoryStore struct {
	mu     sync.RWMutex
	m      map[string][]byte
	sorted []string // the keys of m, in order
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

func (s *MemoryStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

func (s *MemoryStore) Scan(ctx context.Context, prefix string, fn func(string, []byte) error) error {
	// Copy the matching entries first: fn may call Apply.
	type entry struct {
		k string
		v []byte
	}
	var found []entry
	s.mu.RLock()
	i, _ := slices.BinarySearch(s.sorted, prefix)
	for ; i < len(s.sorted) && strings.HasPrefix(s.sorted[i], prefix); i++ {
		k := s.sorted[i]
		found = append(found, entry{k, slices.Clone(s.m[k])})
	}
	s.mu.RUnlock()
	for _, e := range found {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

func (s *MemoryStore) Apply(ctx context.Context, writes []Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range writes {
		i, ok := slices.BinarySearch(s.sorted, w.Key)
		switch {
		case w.Value == nil && ok:
			delete(s.m, w.Key)
			s.sorted = slices.Delete(s.sorted, i, i+1)
		case w.Value != nil:
			s.m[w.Key] = slices.Clone(w.Value)
			if !ok {
				s.sorted = slices.Insert(s.sorted, i, w.Key)
			}
		}
	}
	return nil
}

func (s *MemoryStore) Close() error { return nil }
