package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

func testCreateAccount(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := accountID(1)
	a := store.Account{ID: id, IdentityKey: key("ik", 1, 33), Created: day}
	// The device's Account field is ignored: the first device belongs to a.
	d := store.Device{ID: 1, RegistrationID: 4242, AuthKey: key("auth", 1, 33), Created: day, LastSeen: day + 1}
	must(t, "CreateAccount", s.CreateAccount(ctx, a, d))

	got, err := s.Account(ctx, id)
	must(t, "Account", err)
	if got.ID != id || !bytes.Equal(got.IdentityKey, a.IdentityKey) || got.Created != day || got.UnidentifiedAccessKey != nil {
		t.Errorf("Account = %+v, want %+v", got, a)
	}
	devs, err := s.Devices(ctx, id)
	must(t, "Devices", err)
	d.Account = id
	if len(devs) != 1 || !deviceEqual(devs[0], d) {
		t.Errorf("Devices = %+v, want [%+v]", devs, d)
	}
}

func deviceEqual(a, b store.Device) bool {
	return a.Account == b.Account && a.ID == b.ID && a.RegistrationID == b.RegistrationID &&
		bytes.Equal(a.AuthKey, b.AuthKey) && a.Created == b.Created && a.LastSeen == b.LastSeen
}

func testCreateAccountExists(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	a := store.Account{ID: id, IdentityKey: key("other", 9, 33), Created: day + 5}
	d := store.Device{Account: id, ID: 2, AuthKey: key("other", 9, 33), Created: day + 5}
	wantErr(t, "CreateAccount again", s.CreateAccount(ctx, a, d), store.ErrExists)

	got, err := s.Account(ctx, id)
	must(t, "Account", err)
	if !bytes.Equal(got.IdentityKey, key("ik", 1, 33)) || got.Created != day {
		t.Errorf("a failed CreateAccount changed the account: %+v", got)
	}
	devs, err := s.Devices(ctx, id)
	must(t, "Devices", err)
	if len(devs) != 1 || devs[0].ID != 1 {
		t.Errorf("a failed CreateAccount changed the devices: %+v", devs)
	}
}

func testAccountNotFound(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	newAccount(t, s, 1)
	missing := accountID(2)
	_, err := s.Account(ctx, missing)
	wantErr(t, "Account", err, store.ErrNotFound)
	_, err = s.Devices(ctx, missing)
	wantErr(t, "Devices", err, store.ErrNotFound)
	wantErr(t, "DeleteAccount", s.DeleteAccount(ctx, missing), store.ErrNotFound)
	wantErr(t, "SetUnidentifiedAccessKey", s.SetUnidentifiedAccessKey(ctx, missing, key("uak", 1, 16)), store.ErrNotFound)
	wantErr(t, "AddDevice", s.AddDevice(ctx, store.Device{Account: missing, ID: 2, AuthKey: key("a", 1, 33)}), store.ErrNotFound)
	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, missing, 1), store.ErrNotFound)
	wantErr(t, "Touch", s.Touch(ctx, missing, 1, day+1), store.ErrNotFound)
	wantErr(t, "SetUsername", s.SetUsername(ctx, missing, []byte("hash")), store.ErrNotFound)
	wantErr(t, "DeleteUsername", s.DeleteUsername(ctx, missing), store.ErrNotFound)
	_, err = s.LookupUsername(ctx, []byte("hash"))
	wantErr(t, "LookupUsername", err, store.ErrNotFound)
}

func testUnidentifiedAccessKey(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	for _, k := range [][]byte{key("uak", 1, 16), key("uak", 2, 16)} {
		must(t, "SetUnidentifiedAccessKey", s.SetUnidentifiedAccessKey(ctx, id, k))
		a, err := s.Account(ctx, id)
		must(t, "Account", err)
		if !bytes.Equal(a.UnidentifiedAccessKey, k) {
			t.Errorf("UnidentifiedAccessKey = %x, want %x", a.UnidentifiedAccessKey, k)
		}
	}
}

func testSlicesAreCopied(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := accountID(1)
	ik := key("ik", 1, 33)
	auth := key("auth", 1, 33)
	must(t, "CreateAccount", s.CreateAccount(ctx, store.Account{ID: id, IdentityKey: ik, Created: day},
		store.Device{Account: id, ID: 1, AuthKey: auth, Created: day, LastSeen: day}))
	ik[5] ^= 0xff
	auth[5] ^= 0xff

	a, err := s.Account(ctx, id)
	must(t, "Account", err)
	if !bytes.Equal(a.IdentityKey, key("ik", 1, 33)) {
		t.Error("the store kept the caller's identity key slice")
	}
	a.IdentityKey[0] ^= 0xff
	if a2, _ := s.Account(ctx, id); !bytes.Equal(a2.IdentityKey, key("ik", 1, 33)) {
		t.Error("the store returned its own identity key slice")
	}
	devs, err := s.Devices(ctx, id)
	must(t, "Devices", err)
	if !bytes.Equal(devs[0].AuthKey, key("auth", 1, 33)) {
		t.Error("the store kept the caller's auth key slice")
	}

	content := []byte("sealed")
	env := &store.Envelope{Account: id, Device: 1, Content: content, Expires: day + 30}
	must(t, "Append", s.Append(ctx, []*store.Envelope{env}))
	content[0] = 'X'
	got, err := s.Read(ctx, id, 1, 0, 10)
	must(t, "Read", err)
	if len(got) != 1 || string(got[0].Content) != "sealed" {
		t.Errorf("Read = %+v: the store kept the caller's content slice", got)
	}
}

func testDeleteAccountCascades(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	other := newAccount(t, s, 2)
	for _, a := range []store.AccountID{id, other} {
		addDevice(t, s, a, 2)
		uploadKeys(t, s, a, 1, 3, 3)
		uploadKeys(t, s, a, 2, 3, 3)
		must(t, "SetUsername", s.SetUsername(ctx, a, a[:]))
		appendN(t, s, a, 1, 4)
		appendN(t, s, a, 2, 4)
	}

	must(t, "DeleteAccount", s.DeleteAccount(ctx, id))
	_, err := s.Account(ctx, id)
	wantErr(t, "Account after delete", err, store.ErrNotFound)
	_, err = s.Devices(ctx, id)
	wantErr(t, "Devices after delete", err, store.ErrNotFound)
	_, err = s.LookupUsername(ctx, id[:])
	wantErr(t, "LookupUsername after delete", err, store.ErrNotFound)
	_, _, err = s.CountPreKeys(ctx, id, 1)
	wantErr(t, "CountPreKeys after delete", err, store.ErrNotFound)
	_, err = s.TakeBundles(ctx, id, 0)
	wantErr(t, "TakeBundles after delete", err, store.ErrNotFound)
	_, err = s.Read(ctx, id, 1, 0, 10)
	wantErr(t, "Read after delete", err, store.ErrNotFound)
	err = s.Append(ctx, []*store.Envelope{{Account: id, Device: 1, Content: []byte("x"), Expires: day}})
	wantErr(t, "Append after delete", err, store.ErrNotFound)

	// The other account is untouched.
	if got, err := s.LookupUsername(ctx, other[:]); err != nil || got != other {
		t.Errorf("LookupUsername(other) = %x, %v", got, err)
	}
	for dev := store.DeviceID(1); dev <= 2; dev++ {
		if ec, kem, err := s.CountPreKeys(ctx, other, dev); err != nil || ec != 3 || kem != 3 {
			t.Errorf("CountPreKeys(other, %d) = %d, %d, %v; want 3, 3", dev, ec, kem, err)
		}
		if envs, err := s.Read(ctx, other, dev, 0, 10); err != nil || len(envs) != 4 {
			t.Errorf("Read(other, %d) = %d envelopes, %v; want 4", dev, len(envs), err)
		}
	}

	// The id can be used again and starts empty.
	newAccount(t, s, 1)
	if _, err := s.LookupUsername(ctx, id[:]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a recreated account inherited its username: %v", err)
	}
	if ec, kem, err := s.CountPreKeys(ctx, id, 1); err != nil || ec != 0 || kem != 0 {
		t.Errorf("a recreated account inherited prekeys: %d, %d, %v", ec, kem, err)
	}
	if envs, err := s.Read(ctx, id, 1, 0, 10); err != nil || len(envs) != 0 {
		t.Errorf("a recreated account inherited its mailbox: %d, %v", len(envs), err)
	}
	if devs, err := s.Devices(ctx, id); err != nil || len(devs) != 1 {
		t.Errorf("a recreated account inherited devices: %+v, %v", devs, err)
	}
}

func testAddDevice(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	for _, dev := range []store.DeviceID{5, 3, 2} {
		addDevice(t, s, id, dev)
	}
	devs, err := s.Devices(ctx, id)
	must(t, "Devices", err)
	var ids []store.DeviceID
	for _, d := range devs {
		ids = append(ids, d.ID)
		if d.Account != id {
			t.Errorf("device %d has account %x", d.ID, d.Account)
		}
	}
	if want := []store.DeviceID{1, 2, 3, 5}; !equalSlices(ids, want) {
		t.Errorf("Devices ids = %v, want %v", ids, want)
	}
	want := store.Device{Account: id, ID: 3, RegistrationID: 10, AuthKey: key("dev", 3, 33), Created: day, LastSeen: day}
	if !deviceEqual(devs[2], want) {
		t.Errorf("device 3 = %+v, want %+v", devs[2], want)
	}

	err = s.AddDevice(ctx, store.Device{Account: id, ID: 3, AuthKey: key("x", 1, 33)})
	wantErr(t, "AddDevice existing id", err, store.ErrExists)
	devs, _ = s.Devices(ctx, id)
	if !deviceEqual(devs[2], want) {
		t.Errorf("a failed AddDevice changed device 3: %+v", devs[2])
	}

	// Another account's device ids are its own.
	other := newAccount(t, s, 2)
	addDevice(t, s, other, 3)
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testMaxDevices(t *testing.T, open Opener) {
	l := store.DefaultLimits()
	l.MaxDevices = 3
	s := open(t, l)
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	addDevice(t, s, id, 3)
	err := s.AddDevice(ctx, store.Device{Account: id, ID: 4, AuthKey: key("d", 4, 33)})
	wantErr(t, "AddDevice over the limit", err, store.ErrLimit)
	if devs, _ := s.Devices(ctx, id); len(devs) != 3 {
		t.Errorf("%d devices after a refused AddDevice, want 3", len(devs))
	}
	must(t, "RemoveDevice", s.RemoveDevice(ctx, id, 2))
	addDevice(t, s, id, 4)
	// The limit is per account.
	other := newAccount(t, s, 2)
	addDevice(t, s, other, 2)
	addDevice(t, s, other, 3)
}

func testRemoveDeviceCascades(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	for dev := store.DeviceID(1); dev <= 2; dev++ {
		uploadKeys(t, s, id, dev, 4, 4)
		appendN(t, s, id, dev, 3)
	}
	must(t, "RemoveDevice", s.RemoveDevice(ctx, id, 2))
	wantErr(t, "RemoveDevice again", s.RemoveDevice(ctx, id, 2), store.ErrNotFound)

	devs, err := s.Devices(ctx, id)
	must(t, "Devices", err)
	if len(devs) != 1 || devs[0].ID != 1 {
		t.Errorf("Devices = %+v, want device 1 only", devs)
	}
	_, _, err = s.CountPreKeys(ctx, id, 2)
	wantErr(t, "CountPreKeys of a removed device", err, store.ErrNotFound)
	_, err = s.Read(ctx, id, 2, 0, 10)
	wantErr(t, "Read of a removed device", err, store.ErrNotFound)
	_, err = s.TakeBundles(ctx, id, 2)
	wantErr(t, "TakeBundles of a removed device", err, store.ErrNotFound)
	bs, err := s.TakeBundles(ctx, id, 0)
	must(t, "TakeBundles", err)
	if len(bs) != 1 || bs[0].Device != 1 {
		t.Errorf("TakeBundles = %+v, want device 1 only", bs)
	}

	// Device 1 keeps what it had (less the key TakeBundles took).
	if ec, kem, err := s.CountPreKeys(ctx, id, 1); err != nil || ec != 3 || kem != 3 {
		t.Errorf("CountPreKeys(1) = %d, %d, %v; want 3, 3", ec, kem, err)
	}
	if envs, err := s.Read(ctx, id, 1, 0, 10); err != nil || len(envs) != 3 {
		t.Errorf("Read(1) = %d, %v; want 3", len(envs), err)
	}

	// A device added again under the same id starts empty.
	addDevice(t, s, id, 2)
	if ec, kem, err := s.CountPreKeys(ctx, id, 2); err != nil || ec != 0 || kem != 0 {
		t.Errorf("re-added device inherited prekeys: %d, %d, %v", ec, kem, err)
	}
	if envs, err := s.Read(ctx, id, 2, 0, 10); err != nil || len(envs) != 0 {
		t.Errorf("re-added device inherited its mailbox: %d, %v", len(envs), err)
	}
	bs, err = s.TakeBundles(ctx, id, 2)
	if err != nil || len(bs) != 0 {
		t.Errorf("re-added device inherited signed prekeys: %+v, %v", bs, err)
	}
}

func testTouch(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	lastSeen := func(dev store.DeviceID) store.Day {
		t.Helper()
		devs, err := s.Devices(ctx, id)
		must(t, "Devices", err)
		for _, d := range devs {
			if d.ID == dev {
				return d.LastSeen
			}
		}
		t.Fatalf("device %d missing", dev)
		return 0
	}
	must(t, "Touch", s.Touch(ctx, id, 2, day+3))
	if got := lastSeen(2); got != day+3 {
		t.Errorf("LastSeen = %d, want %d", got, day+3)
	}
	if got := lastSeen(1); got != day {
		t.Errorf("Touch of device 2 changed device 1: %d", got)
	}
	must(t, "Touch same day", s.Touch(ctx, id, 2, day+3))
	must(t, "Touch earlier day", s.Touch(ctx, id, 2, day+1))
	if got := lastSeen(2); got != day+3 {
		t.Errorf("LastSeen moved backwards to %d", got)
	}
	wantErr(t, "Touch unknown device", s.Touch(ctx, id, 9, day+4), store.ErrNotFound)
}

func testUsernames(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	alice := newAccount(t, s, 1)
	bob := newAccount(t, s, 2)
	h1, h2, h3 := []byte("hash-1"), []byte("hash-2"), []byte("hash-3")
	lookup := func(h []byte, want store.AccountID) {
		t.Helper()
		got, err := s.LookupUsername(ctx, h)
		if err != nil || got != want {
			t.Fatalf("LookupUsername(%s) = %x, %v; want %x", h, got, err, want)
		}
	}
	gone := func(h []byte) {
		t.Helper()
		_, err := s.LookupUsername(ctx, h)
		wantErr(t, "LookupUsername("+string(h)+")", err, store.ErrNotFound)
	}

	must(t, "SetUsername", s.SetUsername(ctx, alice, h1))
	lookup(h1, alice)
	must(t, "SetUsername same hash", s.SetUsername(ctx, alice, h1))
	lookup(h1, alice)

	must(t, "SetUsername replace", s.SetUsername(ctx, alice, h2))
	lookup(h2, alice)
	gone(h1)

	must(t, "SetUsername bob", s.SetUsername(ctx, bob, h3))
	wantErr(t, "SetUsername taken", s.SetUsername(ctx, bob, h2), store.ErrExists)
	lookup(h3, bob) // a refused SetUsername keeps the previous name
	lookup(h2, alice)

	must(t, "DeleteUsername", s.DeleteUsername(ctx, alice))
	gone(h2)
	must(t, "DeleteUsername again", s.DeleteUsername(ctx, alice))
	must(t, "SetUsername freed hash", s.SetUsername(ctx, bob, h2))
	lookup(h2, bob)
	gone(h3)

	// Lookup is by exact bytes.
	gone([]byte("hash-"))
	gone([]byte("HASH-2"))
}

func testProfiles(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	got, err := s.Profile(ctx, id)
	must(t, "Profile", err)
	if got != nil {
		t.Fatalf("a new account's profile is %x, want none", got)
	}
	blob := key("profile", 1, 300)
	must(t, "SetProfile", s.SetProfile(ctx, id, blob))
	got, err = s.Profile(ctx, id)
	must(t, "Profile", err)
	if !bytes.Equal(got, blob) {
		t.Fatalf("Profile = %x, want %x", got, blob)
	}
	got[0] ^= 1 // the caller's copy
	if again, _ := s.Profile(ctx, id); !bytes.Equal(again, blob) {
		t.Fatal("Profile returned the store's own bytes")
	}
	must(t, "SetProfile nil", s.SetProfile(ctx, id, nil))
	if got, _ := s.Profile(ctx, id); got != nil {
		t.Fatalf("a deleted profile is %x", got)
	}
	missing := accountID(2)
	wantErr(t, "SetProfile", s.SetProfile(ctx, missing, blob), store.ErrNotFound)
	_, err = s.Profile(ctx, missing)
	wantErr(t, "Profile", err, store.ErrNotFound)
	// Deleting the account deletes its profile.
	must(t, "SetProfile", s.SetProfile(ctx, id, blob))
	must(t, "DeleteAccount", s.DeleteAccount(ctx, id))
	_, err = s.Profile(ctx, id)
	wantErr(t, "Profile after DeleteAccount", err, store.ErrNotFound)
}
