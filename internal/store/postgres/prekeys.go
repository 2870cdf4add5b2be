package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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

func (s *Store) setSigned(ctx context.Context, id store.AccountID, dev store.DeviceID, kind int16, k store.SignedPreKey) error {
	if err := check.SignedPreKey(k); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO signed_prekeys (account, device, kind, id, key, signature)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (account, device, kind) DO UPDATE
		SET id = excluded.id, key = excluded.key, signature = excluded.signature`,
		id[:], int64(dev), kind, int64(k.ID), k.Key, k.Signature)
	if isMissingParent(err) {
		return store.ErrNotFound
	}
	return err
}

// AddPreKeys stores one-time EC and KEM prekeys, all or none: ErrNotFound
// without the device, ErrLimit past Limits.MaxOneTimePreKeys of a kind,
// ErrExists if an id is already stored or repeated.
func (s *Store) AddPreKeys(ctx context.Context, id store.AccountID, dev store.DeviceID, ec []store.PreKey, kem []store.SignedPreKey) error {
	if err := check.PreKeys(ec, kem); err != nil {
		return fmt.Errorf("add prekeys: %w", err)
	}
	ecIDs, ecKeys := make([]int64, len(ec)), make([][]byte, len(ec))
	for i, k := range ec {
		ecIDs[i], ecKeys[i] = int64(k.ID), k.Key
	}
	kemIDs, kemKeys, kemSigs := make([]int64, len(kem)), make([][]byte, len(kem)), make([][]byte, len(kem))
	for i, k := range kem {
		kemIDs[i], kemKeys[i], kemSigs[i] = int64(k.ID), k.Key, k.Signature
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The device row's lock serializes AddPreKeys calls of one device,
		// so the counts below stay true until commit.
		var nEC, nKEM int
		err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM ec_prekeys WHERE account = d.account AND device = d.id),
			(SELECT count(*) FROM kem_prekeys WHERE account = d.account AND device = d.id)
			FROM devices d WHERE d.account = $1 AND d.id = $2 FOR NO KEY UPDATE`,
			id[:], int64(dev)).Scan(&nEC, &nKEM)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if nEC+len(ec) > s.limits.MaxOneTimePreKeys || nKEM+len(kem) > s.limits.MaxOneTimePreKeys {
			return store.ErrLimit
		}
		if len(ec) > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO ec_prekeys (account, device, id, key)
				SELECT $1, $2, * FROM unnest($3::bigint[], $4::bytea[])`, id[:], int64(dev), ecIDs, ecKeys)
			if err != nil {
				return err
			}
		}
		if len(kem) > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO kem_prekeys (account, device, id, key, signature)
				SELECT $1, $2, * FROM unnest($3::bigint[], $4::bytea[], $5::bytea[])`,
				id[:], int64(dev), kemIDs, kemKeys, kemSigs)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if isDuplicate(err) {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("add prekeys: %w", err)
	}
	return nil
}

// CountPreKeys returns how many one-time EC and KEM prekeys the device has
// left; ErrNotFound without the device.
func (s *Store) CountPreKeys(ctx context.Context, id store.AccountID, dev store.DeviceID) (ec, kem int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ec_prekeys WHERE account = d.account AND device = d.id),
		(SELECT count(*) FROM kem_prekeys WHERE account = d.account AND device = d.id)
		FROM devices d WHERE d.account = $1 AND d.id = $2`, id[:], int64(dev)).Scan(&ec, &kem)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return 0, 0, fmt.Errorf("count prekeys: %w", err)
	}
	return ec, kem, nil
}

// takeKeys takes one one-time KEM prekey and one one-time EC prekey of a
// device in one statement. FOR UPDATE SKIP LOCKED makes concurrent takers
// pick different rows rather than wait for (and then miss) the same one.
// The EC key is taken only if a KEM key is at hand, a one-time one or the
// last resort ($3), so that a device skipped for lack of one keeps its EC
// keys.
const takeKeys = `WITH kem AS (
	DELETE FROM kem_prekeys WHERE account = $1 AND device = $2 AND id = (
		SELECT id FROM kem_prekeys WHERE account = $1 AND device = $2
		ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING id, key, signature
), ec AS (
	DELETE FROM ec_prekeys WHERE account = $1 AND device = $2 AND id = (
		SELECT id FROM ec_prekeys WHERE account = $1 AND device = $2
		AND ($3 OR EXISTS (SELECT 1 FROM kem))
		ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING id, key
)
SELECT kem.id, kem.key, kem.signature, ec.id, ec.key
FROM (SELECT) AS one LEFT JOIN kem ON true LEFT JOIN ec ON true`

// TakeBundles returns a bundle for every device of the account (or device
// dev, unless 0) that has a signed prekey and a KEM prekey, in device
// order, consuming one one-time EC and one one-time KEM prekey of each in
// one transaction. ErrNotFound without the account or device.
func (s *Store) TakeBundles(ctx context.Context, id store.AccountID, dev store.DeviceID) ([]store.Bundle, error) {
	var bundles []store.Bundle
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		bundles, err = s.takeBundles(ctx, tx, id, dev)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take bundles: %w", err)
	}
	return bundles, nil
}

func (s *Store) takeBundles(ctx context.Context, tx pgx.Tx, id store.AccountID, dev store.DeviceID) ([]store.Bundle, error) {
	type candidate struct {
		b          store.Bundle
		lastResort *store.SignedPreKey
	}
	rows, err := tx.Query(ctx, `SELECT d.id, d.registration_id, s.id, s.key, s.signature, l.id, l.key, l.signature
		FROM devices d
		LEFT JOIN signed_prekeys s ON s.account = d.account AND s.device = d.id AND s.kind = 1
		LEFT JOIN signed_prekeys l ON l.account = d.account AND l.device = d.id AND l.kind = 2
		WHERE d.account = $1 AND ($2 = 0 OR d.id = $2)
		ORDER BY d.id`, id[:], int64(dev))
	if err != nil {
		return nil, err
	}
	var cands []candidate
	devices := 0
	for rows.Next() {
		var (
			c          candidate
			devID, reg int64
			spkID      *int64
			lrID       *int64
			lrKey, lrS []byte
		)
		err := rows.Scan(&devID, &reg, &spkID, &c.b.SignedPreKey.Key, &c.b.SignedPreKey.Signature, &lrID, &lrKey, &lrS)
		if err != nil {
			rows.Close()
			return nil, err
		}
		devices++
		if spkID == nil {
			continue // no signed prekey: skipped
		}
		c.b.Device, c.b.RegistrationID = store.DeviceID(devID), uint32(reg)
		c.b.SignedPreKey.ID = uint32(*spkID)
		if lrID != nil {
			c.lastResort = &store.SignedPreKey{ID: uint32(*lrID), Key: lrKey, Signature: lrS}
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if devices == 0 {
		if dev != 0 {
			return nil, store.ErrNotFound
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1`, id[:]).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if len(cands) == 0 {
		return nil, nil
	}

	batch := &pgx.Batch{}
	for _, c := range cands {
		batch.Queue(takeKeys, id[:], int64(c.b.Device), c.lastResort != nil)
	}
	br := tx.SendBatch(ctx, batch)
	var bundles []store.Bundle
	for _, c := range cands {
		var (
			kemID, ecID    *int64
			kemKey, kemSig []byte
			ecKey          []byte
			b              = c.b
		)
		if err := br.QueryRow().Scan(&kemID, &kemKey, &kemSig, &ecID, &ecKey); err != nil {
			br.Close()
			return nil, err
		}
		switch {
		case kemID != nil:
			b.KEMPreKey = store.SignedPreKey{ID: uint32(*kemID), Key: kemKey, Signature: kemSig}
		case c.lastResort != nil:
			b.KEMPreKey = *c.lastResort
			b.KEMLastResort = true
		default:
			continue // no KEM prekey at all: skipped, nothing taken
		}
		if ecID != nil {
			b.PreKey = &store.PreKey{ID: uint32(*ecID), Key: ecKey}
		}
		bundles = append(bundles, b)
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	return bundles, nil
}
