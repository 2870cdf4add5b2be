package relay

import (
	"context"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/store"
)

func TestRecipientCache(t *testing.T) {
	e := newEnv(t)
	bob := e.register("bob")
	ctx := context.Background()
	rc := newRecipientCache()
	now := time.Unix(1_800_000_000, 0)
	_, devs, err := rc.get(ctx, e.store, bob.account, now)
	if err != nil || len(devs) != 1 {
		t.Fatalf("%d devices, %v", len(devs), err)
	}
	day := store.DayOf(now)
	if err := e.store.AddDevice(ctx, store.Device{Account: bob.account, ID: 2, RegistrationID: 9, AuthKey: bob.auth.Public.Bytes(), Created: day, LastSeen: day}); err != nil {
		t.Fatal(err)
	}
	if _, devs, _ := rc.get(ctx, e.store, bob.account, now.Add(time.Second)); len(devs) != 1 {
		t.Fatal("cache not used within its TTL")
	}
	if _, devs, _ := rc.get(ctx, e.store, bob.account, now.Add(recipientTTL)); len(devs) != 2 {
		t.Fatal("stale entry served past its TTL")
	}
	if err := e.store.RemoveDevice(ctx, bob.account, 2); err != nil {
		t.Fatal(err)
	}
	rc.forget(bob.account)
	if _, devs, _ := rc.get(ctx, e.store, bob.account, now.Add(recipientTTL)); len(devs) != 1 {
		t.Fatal("forget did not drop the entry")
	}
	if _, _, err := rc.get(ctx, e.store, store.AccountID{1}, now); err == nil {
		t.Fatal("unknown account found")
	}
}
