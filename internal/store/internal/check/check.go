// Package check validates the arguments of store calls and plans the
// writes they make, one way for every backend, so that store/sqlite and
// store/postgres enforce one contract. It touches no database.
package check

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/sotto-chat/sotto/internal/store"
)

// Limits returns an error unless every limit is at least 1.
func Limits(l store.Limits) error {
	var errs []error
	if l.MaxDevices < 1 {
		errs = append(errs, fmt.Errorf("MaxDevices %d is below 1", l.MaxDevices))
	}
	if l.MaxOneTimePreKeys < 1 {
		errs = append(errs, fmt.Errorf("MaxOneTimePreKeys %d is below 1", l.MaxOneTimePreKeys))
	}
	if l.MaxMailbox < 1 {
		errs = append(errs, fmt.Errorf("MaxMailbox %d is below 1", l.MaxMailbox))
	}
	return errors.Join(errs...)
}

// Account returns an error if a stored account would lack a field its
// table requires.
func Account(a store.Account) error {
	if len(a.IdentityKey) == 0 {
		return errors.New("account has no identity key")
	}
	return nil
}

// Device returns an error if d cannot be stored: device 0 (which
// TakeBundles reads as "every device") or no auth key.
func Device(d store.Device) error {
	if d.ID == 0 {
		return errors.New("device id 0 is reserved")
	}
	if len(d.AuthKey) == 0 {
		return errors.New("device has no auth key")
	}
	return nil
}

// SignedPreKey returns an error if k lacks its key or signature.
func SignedPreKey(k store.SignedPreKey) error {
	if len(k.Key) == 0 || len(k.Signature) == 0 {
		return errors.New("signed prekey without key or signature")
	}
	return nil
}

// PreKeys validates AddPreKeys arguments: every key present, and no id
// repeated within a kind (ErrExists, as a stored duplicate would be).
func PreKeys(ec []store.PreKey, kem []store.SignedPreKey) error {
	seen := make(map[uint32]bool, len(ec))
	for _, k := range ec {
		if len(k.Key) == 0 {
			return errors.New("one-time prekey without key")
		}
		if seen[k.ID] {
			return fmt.Errorf("one-time prekey id repeated: %w", store.ErrExists)
		}
		seen[k.ID] = true
	}
	clear(seen)
	for _, k := range kem {
		if err := SignedPreKey(k); err != nil {
			return err
		}
		if seen[k.ID] {
			return fmt.Errorf("one-time KEM prekey id repeated: %w", store.ErrExists)
		}
		seen[k.ID] = true
	}
	return nil
}

// ReadLimit returns an error unless limit is positive.
func ReadLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("read limit %d is below 1", limit)
	}
	return nil
}

// Mailbox is the part of one Append bound for one device's mailbox.
type Mailbox struct {
	Account store.AccountID
	Device  store.DeviceID
	// Envs are the envelopes for this mailbox in the caller's order, which
	// is the order their ids must increase in.
	Envs []*store.Envelope
}

// Append validates the envelopes of an Append call and groups them by
// mailbox, sorted by (account, device): backends that lock mailboxes lock
// them in this one order, so that concurrent Appends cannot deadlock.
func Append(envs []*store.Envelope) ([]Mailbox, error) {
	type key struct {
		a store.AccountID
		d store.DeviceID
	}
	idx := make(map[key]int)
	var mbs []Mailbox
	for i, e := range envs {
		if e == nil {
			return nil, fmt.Errorf("envelope %d is nil", i)
		}
		if len(e.Content) == 0 {
			return nil, fmt.Errorf("envelope %d is empty", i)
		}
		k := key{e.Account, e.Device}
		j, ok := idx[k]
		if !ok {
			j = len(mbs)
			idx[k] = j
			mbs = append(mbs, Mailbox{Account: e.Account, Device: e.Device})
		}
		mbs[j].Envs = append(mbs[j].Envs, e)
	}
	sort.Slice(mbs, func(i, j int) bool {
		if c := bytes.Compare(mbs[i].Account[:], mbs[j].Account[:]); c != 0 {
			return c < 0
		}
		return mbs[i].Device < mbs[j].Device
	})
	return mbs, nil
}
