package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

// expireChunk is how many envelopes one Expire transaction deletes, so
// that a day's expiry does not hold the write lock for long while senders
// wait.
const expireChunk = 4096

// appendTable is Append on the database's envelopes table.
func (s *Store) appendTable(ctx context.Context, envs []*store.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	mbs, err := check.Append(envs)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	firsts := make([]int64, len(mbs))
	// One mailbox is checked before anything is written: no savepoint.
	do := s.w.do
	if len(mbs) == 1 {
		do = s.w.doClean
	}
	err = do(ctx, len(envs), func(x *wtx) error {
		for i, mb := range mbs {
			first, err := appendMailbox(x, mb, s.limits.MaxMailbox)
			if err != nil {
				return err
			}
			firsts[i] = first
		}
		return nil
	})
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

// appendMailbox writes one mailbox's envelopes and returns the first id.
// It refuses (writing nothing) a missing device or a full mailbox.
func appendMailbox(x *wtx, mb check.Mailbox, max int) (first int64, err error) {
	n := len(mb.Envs)
	err = x.scan(`UPDATE devices SET next_envelope = next_envelope + ?1, mailbox_count = mailbox_count + ?1
		WHERE account = ?2 AND id = ?3 AND mailbox_count + ?1 <= ?4
		RETURNING next_envelope - ?1`, []any{n, mb.Account[:], mb.Device, max}, &first)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		err = x.scan(`SELECT 1 FROM devices WHERE account = ? AND id = ?`, []any{mb.Account[:], mb.Device}, &one)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, refusal{store.ErrNotFound}
		}
		if err == nil {
			err = refusal{store.ErrMailboxFull}
		}
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	for j, e := range mb.Envs {
		_, err := x.exec(`INSERT INTO envelopes (account, device, id, expires, content) VALUES (?, ?, ?, ?, ?)`,
			mb.Account[:], mb.Device, first+int64(j), e.Expires, e.Content)
		if err != nil {
			return 0, err
		}
	}
	return first, nil
}

// readTable is Read from the envelopes table.
func (s *Store) readTable(ctx context.Context, id store.AccountID, dev store.DeviceID, after store.EnvelopeID, limit int) ([]store.Envelope, error) {
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
	rows, err := s.readEnvs.QueryContext(ctx, id[:], dev, int64(after), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var envs []store.Envelope
	for rows.Next() {
		e := store.Envelope{Account: id, Device: dev}
		var eid int64
		if err := rows.Scan(&eid, &e.Expires, &e.Content); err != nil {
			return nil, err
		}
		e.ID = store.EnvelopeID(eid)
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

// ackTable is Ack on the envelopes table.
func (s *Store) ackTable(ctx context.Context, id store.AccountID, dev store.DeviceID, ids []store.EnvelopeID) error {
	if len(ids) == 0 {
		if err := s.deviceExists(ctx, id, dev); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		return nil
	}
	// Clean: it refuses (ErrNotFound) only having deleted nothing, and any
	// other failure is an I/O error that aborts the batch anyway, so it
	// needs no savepoint.
	err := s.w.doClean(ctx, len(ids), func(x *wtx) error {
		var deleted int64
		valid := make([]int64, 0, len(ids))
		for _, eid := range ids {
			if eid <= 1<<63-1 { // larger ids are never assigned
				valid = append(valid, int64(eid))
			}
		}
		for len(valid) > 0 {
			chunk := valid[:min(len(valid), ackChunk)]
			valid = valid[len(chunk):]
			args := make([]any, 0, 2+ackChunk)
			args = append(args, id[:], dev)
			for i := range ackChunk {
				// Pad with the chunk's last id: deleting it twice
				// deletes it once, and one statement shape serves
				// every ack.
				args = append(args, chunk[min(i, len(chunk)-1)])
			}
			n, err := x.execN(ackQuery, args...)
			if err != nil {
				return err
			}
			deleted += n
		}
		if deleted == 0 {
			var one int
			err := x.scan(`SELECT 1 FROM devices WHERE account = ? AND id = ?`, []any{id[:], dev}, &one)
			if errors.Is(err, sql.ErrNoRows) {
				return refusal{store.ErrNotFound}
			}
			return err
		}
		_, err := x.exec(`UPDATE devices SET mailbox_count = mailbox_count - ? WHERE account = ? AND id = ?`,
			deleted, id[:], dev)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// ackChunk is how many ids one DELETE of an Ack names: one prepared
// statement for every ack, and most acks (a push's worth) in one step.
const ackChunk = 64

// ackQuery deletes up to ackChunk (64) envelopes of one mailbox.
const ackQuery = "DELETE FROM envelopes WHERE account = ? AND device = ? AND id IN (" +
	"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
	"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
	"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
	"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// expireTable is Expire on the envelopes table. It deletes in chunks of
// expireChunk, each its own transaction; on error, the count so far is
// returned with it.
func (s *Store) expireTable(ctx context.Context, today store.Day) (int, error) {
	total := 0
	for {
		n := 0
		err := s.w.do(ctx, expireChunk, func(x *wtx) error {
			var err error
			n, err = expireChunk1(x, today)
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("expire: %w", err)
		}
		if n < expireChunk {
			return total, nil
		}
	}
}

// expireChunk1 deletes up to expireChunk expired envelopes and updates
// their mailboxes' counts.
func expireChunk1(x *wtx, today store.Day) (int, error) {
	type mailbox struct {
		account string
		device  store.DeviceID
	}
	rows, err := x.query(`DELETE FROM envelopes WHERE rowid IN
		(SELECT rowid FROM envelopes WHERE expires < ? LIMIT ?)
		RETURNING account, device`, today, expireChunk)
	if err != nil {
		return 0, err
	}
	counts := make(map[mailbox]int)
	n := 0
	for rows.Next() {
		var (
			acct []byte
			dev  store.DeviceID
		)
		if err := rows.Scan(&acct, &dev); err != nil {
			rows.Close()
			return 0, err
		}
		counts[mailbox{string(acct), dev}]++
		n++
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	for mb, c := range counts {
		_, err := x.exec(`UPDATE devices SET mailbox_count = mailbox_count - ? WHERE account = ? AND id = ?`,
			c, []byte(mb.account), mb.device)
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}
