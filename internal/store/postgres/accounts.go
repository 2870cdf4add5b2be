package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

// CreateAccount stores a new account with its first device (which belongs
// to a whatever its Account field says). ErrExists if the id is taken.
func (s *Store) CreateAccount(ctx context.Context, a store.Account, first store.Device) error {
	if err := errors.Join(check.Account(a), check.Device(first)); err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO accounts (id, identity_key, created, unidentified_access_key)
			VALUES ($1, $2, $3, $4)`, a.ID[:], a.IdentityKey, int32(a.Created), a.UnidentifiedAccessKey)
		if isDuplicate(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		return insertDevice(ctx, tx, a.ID, first, 1)
	})
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

func insertDevice(ctx context.Context, tx pgx.Tx, id store.AccountID, d store.Device, nextEnvelope int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO devices (account, id, registration_id, auth_key, created, last_seen, next_envelope)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id[:], int64(d.ID), int64(d.RegistrationID), d.AuthKey, int32(d.Created), int32(d.LastSeen), nextEnvelope)
	if isDuplicate(err) {
		return store.ErrExists
	}
	return err
}

// Account returns an account, or ErrNotFound.
func (s *Store) Account(ctx context.Context, id store.AccountID) (store.Account, error) {
	a := store.Account{ID: id}
	var created int32
	err := s.pool.QueryRow(ctx, `SELECT identity_key, created, unidentified_access_key
		FROM accounts WHERE id = $1`, id[:]).Scan(&a.IdentityKey, &created, &a.UnidentifiedAccessKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Account{}, fmt.Errorf("account: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("account: %w", err)
	}
	a.Created = store.Day(created)
	return a, nil
}

// DeleteAccount removes the account and everything stored for it.
// ErrNotFound if there is no such account.
func (s *Store) DeleteAccount(ctx context.Context, id store.AccountID) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, id[:])
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return nil
}

// SetUnidentifiedAccessKey stores the key senders must present.
func (s *Store) SetUnidentifiedAccessKey(ctx context.Context, id store.AccountID, key []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET unidentified_access_key = $1 WHERE id = $2`, key, id[:])
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set unidentified access key: %w", err)
	}
	return nil
}

// AddDevice adds a device to an existing account: ErrNotFound without the
// account, ErrExists if the id is taken, ErrLimit at Limits.MaxDevices.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	if err := check.Device(d); err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The account row's lock serializes AddDevice and RemoveDevice
		// calls of one account, so the count below stays true.
		var floor int64
		err := tx.QueryRow(ctx, `SELECT envelope_floor FROM accounts WHERE id = $1 FOR UPDATE`, d.Account[:]).Scan(&floor)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		var n, taken int
		err = tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE id = $2) FROM devices WHERE account = $1`,
			d.Account[:], int64(d.ID)).Scan(&n, &taken)
		if err != nil {
			return err
		}
		if taken > 0 {
			return store.ErrExists
		}
		if n >= s.limits.MaxDevices {
			return store.ErrLimit
		}
		return insertDevice(ctx, tx, d.Account, d, floor)
	})
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
	rows, err := s.pool.Query(ctx, `SELECT id, registration_id, auth_key, created, last_seen
		FROM devices WHERE account = $1 ORDER BY id`, id[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var devs []store.Device
	for rows.Next() {
		var (
			dev, reg          int64
			created, lastSeen int32
			d                 = store.Device{Account: id}
		)
		if err := rows.Scan(&dev, &reg, &d.AuthKey, &created, &lastSeen); err != nil {
			return nil, err
		}
		d.ID, d.RegistrationID = store.DeviceID(dev), uint32(reg)
		d.Created, d.LastSeen = store.Day(created), store.Day(lastSeen)
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		if err := s.exists(ctx, `SELECT 1 FROM accounts WHERE id = $1`, id[:]); err != nil {
			return nil, err
		}
	}
	return devs, nil
}

// exists returns nil if query finds a row, ErrNotFound if not.
func (s *Store) exists(ctx context.Context, query string, args ...any) error {
	var one int
	err := s.pool.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func (s *Store) deviceExists(ctx context.Context, id store.AccountID, dev store.DeviceID) error {
	return s.exists(ctx, `SELECT 1 FROM devices WHERE account = $1 AND id = $2`, id[:], int64(dev))
}

// RemoveDevice removes a device with its prekeys and mailbox. ErrNotFound
// if there is no such device.
func (s *Store) RemoveDevice(ctx context.Context, id store.AccountID, dev store.DeviceID) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Account first, then device: the lock order AddDevice and
		// DeleteAccount follow too.
		_, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, id[:])
		if err != nil {
			return err
		}
		var next int64
		err = tx.QueryRow(ctx, `DELETE FROM devices WHERE account = $1 AND id = $2 RETURNING next_envelope`,
			id[:], int64(dev)).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		// A device added later under this id continues above the
		// removed one's envelope ids.
		_, err = tx.Exec(ctx, `UPDATE accounts SET envelope_floor = greatest(envelope_floor, $2) WHERE id = $1`,
			id[:], next)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove device: %w", err)
	}
	return nil
}

// Touch records that the device was seen on day. LastSeen never moves
// backwards; a Touch that changes nothing writes nothing.
func (s *Store) Touch(ctx context.Context, id store.AccountID, dev store.DeviceID, day store.Day) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET last_seen = $3 WHERE account = $1 AND id = $2 AND last_seen < $3`,
		id[:], int64(dev), int32(day))
	if err == nil && tag.RowsAffected() == 0 {
		err = s.deviceExists(ctx, id, dev)
	}
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
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET username_hash = $1 WHERE id = $2`, hash, id[:])
	switch {
	case isDuplicate(err):
		err = store.ErrExists
	case err == nil && tag.RowsAffected() == 0:
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set username: %w", err)
	}
	return nil
}

// DeleteUsername removes the account's username, if any; ErrNotFound
// without the account.
func (s *Store) DeleteUsername(ctx context.Context, id store.AccountID) error {
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET username_hash = NULL WHERE id = $1`, id[:])
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete username: %w", err)
	}
	return nil
}

// LookupUsername returns the account holding the hash, or ErrNotFound.
func (s *Store) LookupUsername(ctx context.Context, hash []byte) (store.AccountID, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT id FROM accounts WHERE username_hash = $1`, hash).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET profile = $1 WHERE id = $2`, blob, id[:])
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set profile: %w", err)
	}
	return nil
}

// Profile returns the account's encrypted profile, nil if none is set;
// ErrNotFound without the account.
func (s *Store) Profile(ctx context.Context, id store.AccountID) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT profile FROM accounts WHERE id = $1`, id[:]).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("profile: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return b, nil
}
