// Package storetest is the conformance suite every store.Store passes:
// store/sqlite always, store/postgres when a database is at hand.
//
// Beyond what the store package states, the suite fixes these decisions so
// that every backend behaves alike:
//
//   - Methods naming an account or device that does not exist return
//     store.ErrNotFound, except DeleteUsername with no username and Ack of
//     unknown ids on an existing device, which succeed. TakeBundles on an
//     existing account or device with no usable keys returns no bundles.
//   - CreateAccount stores the first device under the account's id, whatever
//     its Account field says.
//   - Devices are listed, and bundles returned, in device-id order.
//   - Touch never moves LastSeen backwards.
//   - Envelope ids start above 0 and are never reused for a mailbox, not even
//     after the device is removed and a device with the same id added.
//   - Append sets IDs only when it succeeds.
//   - Stores copy the byte slices they are given and return fresh ones.
//   - A store that implements store.AsyncMailboxes calls done exactly once
//     for every change, with the outcome the waiting method would return;
//     changes queued one after another from one goroutine commit in that
//     order.
package storetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

// Opener opens a new, empty store with the given limits. It registers the
// store's cleanup with t and fails t if the store cannot be opened.
type Opener func(t *testing.T, l store.Limits) store.Store

// Run runs the conformance suite against the stores open returns; each
// subtest opens its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Ping", testPing},
		{"CreateAccount", testCreateAccount},
		{"CreateAccountExists", testCreateAccountExists},
		{"AccountNotFound", testAccountNotFound},
		{"UnidentifiedAccessKey", testUnidentifiedAccessKey},
		{"SlicesAreCopied", testSlicesAreCopied},
		{"DeleteAccountCascades", testDeleteAccountCascades},
		{"AddDevice", testAddDevice},
		{"MaxDevices", testMaxDevices},
		{"RemoveDeviceCascades", testRemoveDeviceCascades},
		{"Touch", testTouch},
		{"Usernames", testUsernames},
		{"Profiles", testProfiles},
		{"PreKeysNotFound", testPreKeysNotFound},
		{"AddPreKeys", testAddPreKeys},
		{"MaxOneTimePreKeys", testMaxOneTimePreKeys},
		{"TakeBundles", testTakeBundles},
		{"TakeBundlesLastResort", testTakeBundlesLastResort},
		{"TakeBundlesSkipsDevices", testTakeBundlesSkipsDevices},
		{"TakeBundlesReplacedKeys", testTakeBundlesReplacedKeys},
		{"TakeBundlesConcurrent", testTakeBundlesConcurrent},
		{"AppendRead", testAppendRead},
		{"AppendAllOrNothing", testAppendAllOrNothing},
		{"ReadPaging", testReadPaging},
		{"Ack", testAck},
		{"IDsNeverReused", testIDsNeverReused},
		{"MaxMailbox", testMaxMailbox},
		{"Expire", testExpire},
		{"AppendConcurrent", testAppendConcurrent},
		{"AsyncMailboxes", testAsyncMailboxes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// day is an arbitrary day the suite's accounts are created on.
const day store.Day = 20000

func accountID(n int) store.AccountID {
	var id store.AccountID
	id[0] = 0xa5
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// key returns a distinct, recognisable public key of n bytes.
func key(tag string, i, n int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, n)
	copy(b, tag)
	return b
}

func newAccount(t *testing.T, s store.Store, n int) store.AccountID {
	t.Helper()
	id := accountID(n)
	a := store.Account{ID: id, IdentityKey: key("ik", n, 33), Created: day}
	d := store.Device{Account: id, ID: 1, RegistrationID: uint32(1000 + n), AuthKey: key("auth", n, 33), Created: day, LastSeen: day}
	if err := s.CreateAccount(t.Context(), a, d); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return id
}

func addDevice(t *testing.T, s store.Store, id store.AccountID, dev store.DeviceID) {
	t.Helper()
	d := store.Device{Account: id, ID: dev, RegistrationID: uint32(dev) + 7, AuthKey: key("dev", int(dev), 33), Created: day, LastSeen: day}
	if err := s.AddDevice(t.Context(), d); err != nil {
		t.Fatalf("AddDevice %d: %v", dev, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testPing(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	must(t, "Ping", s.Ping(t.Context()))
}
