package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

// Kinds of signed_prekeys rows.
const (
	kindSignedEC      = 1
	kindKEMLastResort = 2
)

// SetSignedPreKey replaces the device's signed EC prekey.
func (s *Store) SetSignedPreKey(ctx context.Context, id store.AccountID, dev store.DeviceID, k store.SignedPreKey) error {
	if err := s.setSigned(ctx, id, dev, kindSignedEC, k); err != nil {
		return fmt.Errorf("set signed prekey: %w", err)
	}
	return nil
}

// SetLastResortKEMPreKey replaces the device's last-resort KEM prekey.
func (s *Store) SetLastResortKEMPreKey(ctx context.Context, id store.AccountID, dev store.DeviceID, k store.SignedPreKey) error {
	if err := s.setSigned(ctx, id, dev, kindKEMLastResort, k); err != nil {
		return fmt.Errorf("set last-resort KEM prekey: %w", err)
	}
	return nil
}

func (s *Store) setSigned(ctx context.Context, id store.AccountID, dev store.DeviceID, kind int, k store.SignedPreKey) error {
	if err := check.SignedPreKey(k); err != nil {
		return err
	}
	return s.w.doClean(ctx, 1, func(x *wtx) error {
		_, err := x.exec(`INSERT INTO signed_prekeys (account, device, kind, id, key, signature)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account, device, kind) DO UPDATE
			SET id = excluded.id, key = excluded.key, signature = excluded.signature`,
			id[:], dev, kind, k.ID, k.Key, k.Signature)
		if isMissingParent(err) {
			return refusal{store.ErrNotFound}
		}
		return err
	})
}

// AddPreKeys stores one-time EC and KEM prekeys, all or none: ErrNotFound
// without the device, ErrLimit past Limits.MaxOneTimePreKeys of a kind,
// ErrExists if an id is already stored or repeated.
func (s *Store) AddPreKeys(ctx context.Context, id store.AccountID, dev store.DeviceID, ec []store.PreKey, kem []store.SignedPreKey) error {
	if err := check.PreKeys(ec, kem); err != nil {
		return fmt.Errorf("add prekeys: %w", err)
	}
	err := s.w.do(ctx, len(ec)+len(kem), func(x *wtx) error {
		nEC, nKEM, err := countPreKeys(x.scan, id, dev)
		if err != nil {
			return err
		}
		if nEC+len(ec) > s.limits.MaxOneTimePreKeys || nKEM+len(kem) > s.limits.MaxOneTimePreKeys {
			return store.ErrLimit
		}
		for _, k := range ec {
			_, err := x.exec(`INSERT INTO ec_prekeys (account, device, id, key) VALUES (?, ?, ?, ?)`,
				id[:], dev, k.ID, k.Key)
			if isDuplicate(err) {
				return store.ErrExists
			}
			if err != nil {
				return err
			}
		}
		for _, k := range kem {
			_, err := x.exec(`INSERT INTO kem_prekeys (account, device, id, key, signature) VALUES (?, ?, ?, ?, ?)`,
				id[:], dev, k.ID, k.Key, k.Signature)
			if isDuplicate(err) {
				return store.ErrExists
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add prekeys: %w", err)
	}
	return nil
}

// CountPreKeys returns how many one-time EC and KEM prekeys the device has
// left; ErrNotFound without the device.
func (s *Store) CountPreKeys(ctx context.Context, id store.AccountID, dev store.DeviceID) (ec, kem int, err error) {
	scan := func(query string, args []any, dest ...any) error {
		return s.rdb.QueryRowContext(ctx, query, args...).Scan(dest...)
	}
	ec, kem, err = countPreKeys(scan, id, dev)
	if err != nil {
		return 0, 0, fmt.Errorf("count prekeys: %w", err)
	}
	return ec, kem, nil
}

func countPreKeys(scan func(string, []any, ...any) error, id store.AccountID, dev store.DeviceID) (ec, kem int, err error) {
	err = scan(`SELECT
		(SELECT count(*) FROM ec_prekeys WHERE account = d.account AND device = d.id),
		(SELECT count(*) FROM kem_prekeys WHERE account = d.account AND device = d.id)
		FROM devices d WHERE d.account = ? AND d.id = ?`, []any{id[:], dev}, &ec, &kem)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, store.ErrNotFound
	}
	return ec, kem, err
}

// TakeBundles returns a bundle for every device of the account (or device
// dev, unless 0) that has a signed prekey and a KEM prekey, in device
// order, consuming one one-time EC and one one-time KEM prekey of each in
// one transaction. ErrNotFound without the account or device.
func (s *Store) TakeBundles(ctx context.Context, id store.AccountID, dev store.DeviceID) ([]store.Bundle, error) {
	var bundles []store.Bundle
	err := s.w.do(ctx, 2, func(x *wtx) error {
		var err error
		bundles, err = takeBundles(x, id, dev)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take bundles: %w", err)
	}
	return bundles, nil
}

func takeBundles(x *wtx, id store.AccountID, dev store.DeviceID) ([]store.Bundle, error) {
	type candidate struct {
		b          store.Bundle
		lastResort *store.SignedPreKey
	}
	rows, err := x.query(`SELECT d.id, d.registration_id, s.id, s.key, s.signature, l.id, l.key, l.signature
		FROM devices d
		LEFT JOIN signed_prekeys s ON s.account = d.account AND s.device = d.id AND s.kind = 1
		LEFT JOIN signed_prekeys l ON l.account = d.account AND l.device = d.id AND l.kind = 2
		WHERE d.account = ? AND (? = 0 OR d.id = ?)
		ORDER BY d.id`, id[:], dev, dev)
	if err != nil {
		return nil, err
	}
	var cands []candidate
	devices := 0
	for rows.Next() {
		var (
			c          candidate
			spkID      sql.NullInt64
			lrID       sql.NullInt64
			lrKey, lrS []byte
		)
		err := rows.Scan(&c.b.Device, &c.b.RegistrationID, &spkID, &c.b.SignedPreKey.Key, &c.b.SignedPreKey.Signature,
			&lrID, &lrKey, &lrS)
		if err != nil {
			rows.Close()
			return nil, err
		}
		devices++
		if !spkID.Valid {
			continue // no signed prekey: skipped
		}
		c.b.SignedPreKey.ID = uint32(spkID.Int64)
		if lrID.Valid {
			c.lastResort = &store.SignedPreKey{ID: uint32(lrID.Int64), Key: lrKey, Signature: lrS}
		}
		cands = append(cands, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if devices == 0 {
		if dev != 0 {
			return nil, store.ErrNotFound
		}
		var one int
		err := x.scan(`SELECT 1 FROM accounts WHERE id = ?`, []any{id[:]}, &one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}

	var bundles []store.Bundle
	for _, c := range cands {
		b := c.b
		var k store.SignedPreKey
		err := x.scan(`DELETE FROM kem_prekeys WHERE account = ?1 AND device = ?2
			AND id = (SELECT min(id) FROM kem_prekeys WHERE account = ?1 AND device = ?2)
			RETURNING id, key, signature`, []any{id[:], b.Device}, &k.ID, &k.Key, &k.Signature)
		switch {
		case err == nil:
			b.KEMPreKey = k
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		case c.lastResort != nil:
			b.KEMPreKey = *c.lastResort
			b.KEMLastResort = true
		default:
			continue // no KEM prekey at all: skipped, nothing taken
		}
		var pk store.PreKey
		err = x.scan(`DELETE FROM ec_prekeys WHERE account = ?1 AND device = ?2
			AND id = (SELECT min(id) FROM ec_prekeys WHERE account = ?1 AND device = ?2)
			RETURNING id, key`, []any{id[:], b.Device}, &pk.ID, &pk.Key)
		switch {
		case err == nil:
			b.PreKey = &pk
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
		bundles = append(bundles, b)
	}
	return bundles, nil
}
