package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

// expireDevices is how many mailboxes one Expire transaction empties of
// expired envelopes, so that a day's expiry holds few row locks at a time
// while senders append.
const expireDevices = 256

// Append stores the envelopes durably and sets their IDs, all or none:
// ErrNotFound if a device does not exist, ErrMailboxFull if a mailbox would
// exceed Limits.MaxMailbox. Concurrent Appends share a transaction (see
// appender).
func (s *Store) Append(ctx context.Context, envs []*store.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	mbs, err := check.Append(envs)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	firsts, err := s.app.append(ctx, mbs, len(envs))
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	for i, mb := range mbs {
		for j, e := range mb.Envs {
			e.ID = store.EnvelopeID(firsts[i] + int64(j))
		}
	}
	return nil
}

// Read returns up to limit envelopes of the device's mailbox with ids
// above after, in id order; ErrNotFound without the device.
func (s *Store) Read(ctx context.Context, id store.AccountID, dev store.DeviceID, after store.EnvelopeID, limit int) ([]store.Envelope, error) {
	if err := check.ReadLimit(limit); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	envs, err := s.read(ctx, id, dev, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return envs, nil
}

func (s *Store) read(ctx context.Context, id store.AccountID, dev store.DeviceID, after store.EnvelopeID, limit int) ([]store.Envelope, error) {
	if after > 1<<63-1 {
		after = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT id, expires, content FROM envelopes
		WHERE account = $1 AND device = $2 AND id > $3 ORDER BY id LIMIT $4`,
		id[:], int64(dev), int64(after), int64(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var envs []store.Envelope
	for rows.Next() {
		var (
			eid     int64
			expires int32
			e       = store.Envelope{Account: id, Device: dev}
		)
		if err := rows.Scan(&eid, &expires, &e.Content); err != nil {
			return nil, err
		}
		e.ID, e.Expires = store.EnvelopeID(eid), store.Day(expires)
		envs = append(envs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		if err := s.deviceExists(ctx, id, dev); err != nil {
			return nil, err
		}
	}
	return envs, nil
}

// Ack deletes the device's envelopes with these ids; unknown ids are
// ignored. ErrNotFound without the device.
func (s *Store) Ack(ctx context.Context, id store.AccountID, dev store.DeviceID, ids []store.EnvelopeID) error {
	eids := make([]int64, 0, len(ids))
	for _, e := range ids {
		if e <= 1<<63-1 { // larger ids were never assigned
			eids = append(eids, int64(e))
		}
	}
	// One round trip: a batch runs as one implicit transaction. The
	// device row is locked first, the order Append follows, and the
	// count updated with the deletion.
	err := retry(func() error {
		b := &pgx.Batch{}
		b.Queue(`SELECT 1 FROM devices WHERE account = $1 AND id = $2 FOR NO KEY UPDATE`, id[:], int64(dev))
		b.Queue(`WITH gone AS (
				DELETE FROM envelopes WHERE account = $1 AND device = $2 AND id = ANY($3) RETURNING 1)
			UPDATE devices SET mailbox_count = mailbox_count - (SELECT count(*) FROM gone)
			WHERE account = $1 AND id = $2`, id[:], int64(dev), eids)
		br := s.pool.SendBatch(ctx, b)
		var one int
		found := br.QueryRow().Scan(&one)
		_, err := br.Exec()
		if err := errors.Join(err, br.Close()); err != nil {
			return err
		}
		if errors.Is(found, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return found
	})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Expire deletes every envelope whose Expires day is before today and
// returns how many it deleted, expireDevices mailboxes per transaction; on
// error, the count so far is returned with it.
func (s *Store) Expire(ctx context.Context, today store.Day) (int, error) {
	total := 0
	for {
		var n, mailboxes int
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			n, mailboxes, err = expireSome(ctx, tx, today)
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("expire: %w", err)
		}
		if mailboxes < expireDevices {
			return total, nil
		}
	}
}

// expireSome empties up to expireDevices mailboxes of their expired
// envelopes; it returns the envelopes deleted and the mailboxes visited.
func expireSome(ctx context.Context, tx pgx.Tx, today store.Day) (deleted, mailboxes int, err error) {
	// Lock the device rows first, in key order, as Append and Ack do.
	rows, err := tx.Query(ctx, `SELECT account, id FROM devices
		WHERE (account, id) IN (SELECT DISTINCT account, device FROM envelopes WHERE expires < $1 LIMIT $2)
		ORDER BY account, id FOR NO KEY UPDATE`, int32(today), expireDevices)
	if err != nil {
		return 0, 0, err
	}
	type mailbox struct {
		account []byte
		device  int64
	}
	var mbs []mailbox
	for rows.Next() {
		var mb mailbox
		if err := rows.Scan(&mb.account, &mb.device); err != nil {
			rows.Close()
			return 0, 0, err
		}
		mbs = append(mbs, mb)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	batch := &pgx.Batch{}
	for _, mb := range mbs {
		batch.Queue(`WITH gone AS (
				DELETE FROM envelopes WHERE account = $1 AND device = $2 AND expires < $3 RETURNING 1)
			UPDATE devices SET mailbox_count = mailbox_count - (SELECT count(*) FROM gone)
			WHERE account = $1 AND id = $2
			RETURNING (SELECT count(*) FROM gone)`, mb.account, mb.device, int32(today))
	}
	br := tx.SendBatch(ctx, batch)
	for range mbs {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			br.Close()
			return 0, 0, err
		}
		deleted += n
	}
	if err := br.Close(); err != nil {
		return 0, 0, err
	}
	return deleted, len(mbs), nil
}
