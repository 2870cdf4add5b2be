package session

import (
	"fmt"

	"github.com/sotto-chat/sotto/internal/keys"
)

// MemoryPreKeys is PreKeys held in maps: for tests, tools, and clients that
// load their prekeys into memory. It is not safe for concurrent use.
type MemoryPreKeys struct {
	Signed map[keys.SignedPreKeyID]keys.SignedPreKey
	EC     map[keys.PreKeyID]keys.PreKey
	KEM    map[keys.KEMPreKeyID]keys.KEMPreKey
}

// NewMemoryPreKeys returns an empty MemoryPreKeys.
func NewMemoryPreKeys() *MemoryPreKeys {
	return &MemoryPreKeys{
		Signed: map[keys.SignedPreKeyID]keys.SignedPreKey{},
		EC:     map[keys.PreKeyID]keys.PreKey{},
		KEM:    map[keys.KEMPreKeyID]keys.KEMPreKey{},
	}
}

// SignedPreKey implements PreKeys.
func (m *MemoryPreKeys) SignedPreKey(id keys.SignedPreKeyID) (keys.SignedPreKey, error) {
	if k, ok := m.Signed[id]; ok {
		return k, nil
	}
	return keys.SignedPreKey{}, fmt.Errorf("signed prekey %d: %w", id, ErrNoPreKey)
}

// PreKey implements PreKeys.
func (m *MemoryPreKeys) PreKey(id keys.PreKeyID) (keys.PreKey, error) {
	if k, ok := m.EC[id]; ok {
		return k, nil
	}
	return keys.PreKey{}, fmt.Errorf("one-time prekey %d: %w", id, ErrNoPreKey)
}

// KEMPreKey implements PreKeys.
func (m *MemoryPreKeys) KEMPreKey(id keys.KEMPreKeyID) (keys.KEMPreKey, error) {
	if k, ok := m.KEM[id]; ok {
		return k, nil
	}
	return keys.KEMPreKey{}, fmt.Errorf("KEM prekey %d: %w", id, ErrNoPreKey)
}
