package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
	"github.com/sotto-chat/sotto/internal/store/queue"
)

// CreateAccount stores a new account with its first device (which belongs
// to a whatever its Account field says). ErrExists if the id is taken.
func (s *Store) CreateAccount(ctx context.Context, a store.Account, first store.Device) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if err := errors.Join(check.Account(a), check.Device(first)); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	err := s.w.do(ctx, 2, func(x *wtx) error {
		_, err := x.exec(`INSERT INTO accounts (id, identity_key, created, unidentified_access_key)
			VALUES (?, ?, ?, ?)`, a.ID[:], a.IdentityKey, a.Created, nullBytes(a.UnidentifiedAccessKey))
		if isDuplicate(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		return insertDevice(x, a.ID, first, 1)
	})
	if err == nil && s.q != nil {
		err = s.q.AddBox(ctx, queue.Box{Account: a.ID, Device: first.ID})
	}
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

func insertDevice(x *wtx, id store.AccountID, d store.Device, nextEnvelope int64) error {
	_, err := x.exec(`INSERT INTO devices (account, id, registration_id, auth_key, created, last_seen, next_envelope)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id[:], d.ID, d.RegistrationID, d.AuthKey, d.Created, d.LastSeen, nextEnvelope)
	if isDuplicate(err) {
		return store.ErrExists
	}
	return err
}

// nullBytes stores an absent key as NULL rather than an empty blob.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Account returns an account, or ErrNotFound.
func (s *Store) Account(ctx context.Context, id store.AccountID) (store.Account, error) {
	a := store.Account{ID: id}
	err := s.readAccount.QueryRowContext(ctx, id[:]).Scan(&a.IdentityKey, &a.Created, &a.UnidentifiedAccessKey)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("account: %w", err)
	}
	return a, nil
}

// DeleteAccount removes the account and everything stored for it.
// ErrNotFound if there is no such account.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	err := s.w.doClean(ctx, 1, func(x *wtx) error {
		n, err := x.execN(`DELETE FROM accounts WHERE id = ?`, id[:])
		if err == nil && n == 0 {
			return refusal{store.ErrNotFound}
		}
		return err
	})
	if err == nil && s.q != nil {
		err = s.q.RemoveAccount(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return nil
}

// SetUnidentifiedAccessKey stores the key senders must present.
func (s *Store) SetUnidentifiedAccessKey(ctx context.Context, id store.AccountID, key []byte) error {
	err := s.w.doClean(ctx, 1, func(x *wtx) error {
		n, err := x.execN(`UPDATE accounts SET unidentified_access_key = ? WHERE id = ?`, nullBytes(key), id[:])
		if err == nil && n == 0 {
			return refusal{store.ErrNotFound}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("set unidentified access key: %w", err)
	}
	return nil
}

// AddDevice adds a device to an existing account: ErrNotFound without the
// account, ErrExists if the id is taken, ErrLimit at Limits.MaxDevices.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if err := check.Device(d); err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	err := s.w.do(ctx, 1, func(x *wtx) error {
		var floor int64
		err := x.scan(`SELECT envelope_floor FROM accounts WHERE id = ?`, []any{d.Account[:]}, &floor)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		var n, taken int
		err = x.scan(`SELECT count(*), count(*) FILTER (WHERE id = ?) FROM devices WHERE account = ?`,
			[]any{d.ID, d.Account[:]}, &n, &taken)
		if err != nil {
			return err
		}
		if taken > 0 {
			return store.ErrExists
		}
		if n >= s.limits.MaxDevices {
			return store.ErrLimit
		}
		return insertDevice(x, d.Account, d, floor)
	})
	if err == nil && s.q != nil {
		err = s.q.AddBox(ctx, queue.Box{Account: d.Account, Device: d.ID})
	}
	if err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	return nil
}

// Devices lists an account's devices in id order; ErrNotFound without the
// account.
func (s *Store) Devices(ctx context.Context, id store.AccountID) ([]store.Device, error) {
	devs, err := s.devices(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return devs, nil
}

func (s *Store) devices(ctx context.Context, id store.AccountID) ([]store.Device, error) {
	rows, err := s.readDevices.QueryContext(ctx, id[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var devs []store.Device
	for rows.Next() {
		d := store.Device{Account: id}
		if err := rows.Scan(&d.ID, &d.RegistrationID, &d.AuthKey, &d.Created, &d.LastSeen); err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		if err := s.accountExists(ctx, id); err != nil {
			return nil, err
		}
	}
	return devs, nil
}

// accountExists returns nil if the account exists, ErrNotFound if not.
func (s *Store) accountExists(ctx context.Context, id store.AccountID) error {
	var one int
	err := s.readAccountExists.QueryRowContext(ctx, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// deviceExists returns nil if the device exists, ErrNotFound if not.
func (s *Store) deviceExists(ctx context.Context, id store.AccountID, dev store.DeviceID) error {
	var one int
	err := s.readDeviceExists.QueryRowContext(ctx, id[:], dev).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// RemoveDevice removes a device with its prekeys and mailbox. ErrNotFound
// if there is no such device.
func (s *Store) RemoveDevice(ctx context.Context, id store.AccountID, dev store.DeviceID) error {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	err := s.w.do(ctx, 1, func(x *wtx) error {
		var next int64
		err := x.scan(`DELETE FROM devices WHERE account = ? AND id = ? RETURNING next_envelope`,
			[]any{id[:], dev}, &next)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		// A device added later under this id continues above the
		// removed one's envelope ids.
		_, err = x.exec(`UPDATE accounts SET envelope_floor = max(envelope_floor, ?) WHERE id = ?`, next, id[:])
		return err
	})
	if err == nil && s.q != nil {
		err = s.q.RemoveBox(ctx, queue.Box{Account: id, Device: dev})
	}
	if err != nil {
		return fmt.Errorf("remove device: %w", err)
	}
	return nil
}

// Touch records that the device was seen on day. LastSeen never moves
// backwards; a Touch that changes nothing writes nothing.
func (s *Store) Touch(ctx context.Context, id store.AccountID, dev store.DeviceID, day store.Day) error {
	var last store.Day
	err := s.rdb.QueryRowContext(ctx, `SELECT last_seen FROM devices WHERE account = ? AND id = ?`,
		id[:], dev).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("touch: %w", store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("touch: %w", err)
	case last >= day:
		return nil
	}
	err = s.w.doClean(ctx, 1, func(x *wtx) error {
		_, err := x.exec(`UPDATE devices SET last_seen = max(last_seen, ?) WHERE account = ? AND id = ?`,
			day, id[:], dev)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	return nil
}

// SetUsername binds a username hash to the account, replacing its previous
// one: ErrExists if another account holds it, ErrNotFound without the
// account.
func (s *Store) SetUsername(ctx context.Context, id store.AccountID, hash []byte) error {
	if len(hash) == 0 {
		return errors.New("set username: empty hash")
	}
	err := s.w.doClean(ctx, 1, func(x *wtx) error {
		n, err := x.execN(`UPDATE accounts SET username_hash = ? WHERE id = ?`, hash, id[:])
		if isDuplicate(err) {
			return refusal{store.ErrExists}
		}
		if err == nil && n == 0 {
			return refusal{store.ErrNotFound}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("set username: %w", err)
	}
	return nil
}

// DeleteUsername removes the account's username, if any; ErrNotFound
// without the account.
func (s *Store) DeleteUsername(ctx context.Context, id store.AccountID) error {
	err := s.w.doClean(ctx, 1, func(x *wtx) error {
		n, err := x.execN(`UPDATE accounts SET username_hash = NULL WHERE id = ?`, id[:])
		if err == nil && n == 0 {
			return refusal{store.ErrNotFound}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete username: %w", err)
	}
	return nil
}

// LookupUsername returns the account holding the hash, or ErrNotFound.
func (s *Store) LookupUsername(ctx context.Context, hash []byte) (store.AccountID, error) {
	var b []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT id FROM accounts WHERE username_hash = ?`, hash).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AccountID{}, fmt.Errorf("lookup username: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AccountID{}, fmt.Errorf("lookup username: %w", err)
	}
	var id store.AccountID
	if len(b) != len(id) {
		return store.AccountID{}, fmt.Errorf("lookup username: stored account id has %d bytes", len(b))
	}
	copy(id[:], b)
	return id, nil
}

// SetProfile replaces the account's encrypted profile (nil deletes it);
// ErrNotFound without the account.
func (s *Store) SetProfile(ctx context.Context, id store.AccountID, blob []byte) error {
	err := s.w.doClean(ctx, 1, func(x *wtx) error {
		n, err := x.execN(`UPDATE accounts SET profile = ? WHERE id = ?`, blob, id[:])
		if err == nil && n == 0 {
			return refusal{store.ErrNotFound}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("set profile: %w", err)
	}
	return nil
}

// Profile returns the account's encrypted profile, nil if none is set;
// ErrNotFound without the account.
func (s *Store) Profile(ctx context.Context, id store.AccountID) ([]byte, error) {
	var b []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT profile FROM accounts WHERE id = ?`, id[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("profile: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return b, nil
}
