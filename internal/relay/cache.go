package relay

import (
	"context"
	"sync"
	"time"

	"github.com/sotto-chat/sotto/internal/store"
)

// Recipient lookups are the bulk of a Send's reads; the relay keeps recent
// ones in memory.
const (
	// recipientTTL bounds how stale a cached account or device list may be.
	// This node invalidates what it changes itself at once; the TTL covers
	// changes made elsewhere (another node of a cluster), for which a stale
	// list costs at worst one refused Send that the client retries.
	recipientTTL = 2 * time.Second
	// maxRecipients bounds the cache; when it is full it starts over,
	// which keeps the code simple and the memory fixed (~1 KB an entry).
	maxRecipients = 100_000
)

// recipient is a cached account with its devices.
type recipient struct {
	account store.Account
	devices []store.Device
	expires time.Time
}

// recipientCache is safe for concurrent use.
type recipientCache struct {
	mu      sync.Mutex
	entries map[store.AccountID]recipient
}

func newRecipientCache() *recipientCache {
	return &recipientCache{entries: map[store.AccountID]recipient{}}
}

// peek returns the account and its devices if the cache holds them, fresh.
// The returned slice must not be modified.
func (rc *recipientCache) peek(id store.AccountID, now time.Time) (store.Account, []store.Device, bool) {
	rc.mu.Lock()
	e, ok := rc.entries[id]
	rc.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return store.Account{}, nil, false
	}
	return e.account, e.devices, true
}

// get returns the account and its devices, from the cache or the store.
// The returned slice must not be modified.
func (rc *recipientCache) get(ctx context.Context, st store.Store, id store.AccountID, now time.Time) (store.Account, []store.Device, error) {
	if acct, devices, ok := rc.peek(id, now); ok {
		return acct, devices, nil
	}
	acct, err := st.Account(ctx, id)
	if err != nil {
		return store.Account{}, nil, err
	}
	devices, err := st.Devices(ctx, id)
	if err != nil {
		return store.Account{}, nil, err
	}
	rc.mu.Lock()
	if len(rc.entries) >= maxRecipients {
		clear(rc.entries)
	}
	rc.entries[id] = recipient{account: acct, devices: devices, expires: now.Add(recipientTTL)}
	rc.mu.Unlock()
	return acct, devices, nil
}

// forget drops an account after this node changed it.
func (rc *recipientCache) forget(id store.AccountID) {
	rc.mu.Lock()
	delete(rc.entries, id)
	rc.mu.Unlock()
}
