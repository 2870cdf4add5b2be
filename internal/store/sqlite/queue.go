package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/queue"
)

// openQueue opens the mailbox queue in dir with a mailbox for every device
// in the database.
func openQueue(ctx context.Context, conn *sql.Conn, dir string, limits store.Limits, log *slog.Logger, onCommit func(time.Duration)) (*queue.Queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox directory: %w", err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT account, id FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	var boxes []queue.Box
	for rows.Next() {
		var (
			acct []byte
			b    queue.Box
		)
		if err := rows.Scan(&acct, &b.Device); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list devices: %w", err)
		}
		copy(b.Account[:], acct)
		boxes = append(boxes, b)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	q, err := queue.Open(dir, boxes, queue.Options{MaxMailbox: limits.MaxMailbox, Logger: log, OnSyncedCommit: onCommit})
	if err != nil {
		return nil, err
	}
	if err := moveTable(ctx, conn, q, log); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// moveChunk is how many envelopes moveTable moves per step.
const moveChunk = 1024

// moveTable moves envelopes left in the envelopes table (a database that
// kept its mailboxes there before) into the queue, in id order per
// mailbox. They get new ids; a crash between a step's append and its
// delete delivers that step's envelopes twice, which clients drop as
// duplicates, and never loses one.
func moveTable(ctx context.Context, conn *sql.Conn, q *queue.Queue, log *slog.Logger) error {
	moved := 0
	for {
		rows, err := conn.QueryContext(ctx, `SELECT rowid, account, device, expires, content FROM envelopes
			ORDER BY account, device, id LIMIT ?`, moveChunk)
		if err != nil {
			return fmt.Errorf("move envelopes to the queue: %w", err)
		}
		var (
			envs   []*store.Envelope
			rowids []int64
		)
		for rows.Next() {
			var (
				rowid int64
				acct  []byte
				e     store.Envelope
			)
			if err := rows.Scan(&rowid, &acct, &e.Device, &e.Expires, &e.Content); err != nil {
				rows.Close()
				return fmt.Errorf("move envelopes to the queue: %w", err)
			}
			copy(e.Account[:], acct)
			envs = append(envs, &e)
			rowids = append(rowids, rowid)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("move envelopes to the queue: %w", err)
		}
		if len(envs) == 0 {
			break
		}
		// The queue's own mailbox limit is not what refuses here: the
		// table held at most as many per device.
		if err := q.Append(ctx, envs); err != nil {
			return fmt.Errorf("move envelopes to the queue: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `DELETE FROM envelopes WHERE rowid IN (SELECT value FROM json_each(?))`,
			jsonInts(rowids)); err != nil {
			return fmt.Errorf("move envelopes to the queue: %w", err)
		}
		moved += len(envs)
	}
	if moved > 0 {
		if _, err := conn.ExecContext(ctx, `UPDATE devices SET mailbox_count = 0`); err != nil {
			return fmt.Errorf("move envelopes to the queue: %w", err)
		}
		log.Info("moved mailboxes from the database to the queue", "envelopes", moved)
	}
	return nil
}

// jsonInts formats integers as a JSON array.
func jsonInts(xs []int64) string {
	b := []byte{'['}
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return string(append(b, ']'))
}

// Append stores the envelopes durably and sets their IDs, all or none:
// ErrNotFound if a device does not exist, ErrMailboxFull if a mailbox would
// exceed Limits.MaxMailbox. Concurrent Appends share one commit.
func (s *Store) Append(ctx context.Context, envs []*store.Envelope) error {
	if s.q != nil {
		return s.q.Append(ctx, envs)
	}
	return s.appendTable(ctx, envs)
}

// AsyncMailboxes returns the mailbox queue, which takes changes without
// waiting (store.AsyncOf); nil with the mailboxes in the database.
func (s *Store) AsyncMailboxes() store.AsyncMailboxes {
	if s.q == nil {
		return nil
	}
	return s.q
}

// Read returns up to limit envelopes of the device's mailbox with ids
// above after, in id order; ErrNotFound without the device.
func (s *Store) Read(ctx context.Context, id store.AccountID, dev store.DeviceID, after store.EnvelopeID, limit int) ([]store.Envelope, error) {
	if s.q != nil {
		return s.q.Read(ctx, id, dev, after, limit)
	}
	return s.readTable(ctx, id, dev, after, limit)
}

// Ack deletes the device's envelopes with these ids; unknown ids are
// ignored. ErrNotFound without the device.
func (s *Store) Ack(ctx context.Context, id store.AccountID, dev store.DeviceID, ids []store.EnvelopeID) error {
	if s.q != nil {
		return s.q.Ack(ctx, id, dev, ids)
	}
	return s.ackTable(ctx, id, dev, ids)
}

// Expire deletes every envelope whose Expires day is before today and
// returns how many it deleted.
func (s *Store) Expire(ctx context.Context, today store.Day) (int, error) {
	if s.q != nil {
		return s.q.Expire(ctx, today)
	}
	return s.expireTable(ctx, today)
}
