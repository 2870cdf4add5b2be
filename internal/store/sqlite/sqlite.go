// Package sqlite is the default store.Store: one SQLite file, nothing to
// install, pure Go (modernc.org/sqlite; builds with CGO_ENABLED=0).
//
// The file runs in WAL mode with synchronous=FULL, so a write that returned
// is on disk. Readers use a pool of connections and never wait for the
// writer. Every write goes through one writer goroutine on one connection:
// concurrent writes (Appends above all) are gathered into one transaction,
// each under its own savepoint, and committed with one fsync — group
// commit. A caller returns only once its batch has committed, or with an
// error and nothing written.
//
// The schema lives in migrations/, applied in one transaction by Open;
// docs/what-the-server-stores.md describes every column.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
	"github.com/sotto-chat/sotto/internal/store/internal/migrate"
	"github.com/sotto-chat/sotto/internal/store/queue"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

const (
	// busyTimeout is how long a connection waits for a lock another
	// process holds (a backup, the sqlite3 shell) before failing.
	busyTimeout = 5 * time.Second
	// maxReadConns bounds the read pool. WAL readers run in parallel, but
	// each connection holds its own page cache; a few per core suffice.
	maxReadConns = 8
	// walAutocheckpoint is the WAL size, in 4 KiB pages (about 40 MiB),
	// at which a commit copies the WAL back into the database. A page
	// written many times between checkpoints is copied once, so a larger
	// WAL saves the writer work under load (about 15% in
	// BenchmarkAppendParallel against SQLite's default of 1,000); 40 MiB
	// of disk is cheap.
	walAutocheckpoint = 10_000
)

// Options configures a Store.
type Options struct {
	// Limits bound what one account or device can store; the zero value
	// means store.DefaultLimits().
	Limits store.Limits
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// MailboxDir, if set, keeps the mailboxes in a queue (package
	// store/queue) in this directory instead of the database's envelopes
	// table: several times the throughput for the append-and-delete
	// traffic of mailboxes (see BENCHMARKS.md). Accounts, devices and
	// prekeys stay in the database either way.
	MailboxDir string
	// OnMailboxCommit, with MailboxDir, is the queue's
	// Options.OnSyncedCommit.
	OnMailboxCommit func(time.Duration)
}

// Store is a store.Store in one SQLite file. It is safe for concurrent use.
type Store struct {
	limits store.Limits
	log    *slog.Logger
	rdb    *sql.DB // read pool, query_only connections
	wdb    *sql.DB // one connection, held by w
	w      *writer
	// readEnvs is the prepared Read query, on the read pool.
	readEnvs *sql.Stmt
	// The other reads on every Send and push, prepared once: parsing their
	// SQL each time was a quarter of the server's CPU under load.
	readAccount, readDevices, readAccountExists, readDeviceExists *sql.Stmt

	// q holds the mailboxes when Options.MailboxDir is set. devMu
	// serializes device-list changes (in the database, then in q), so
	// that q's list of mailboxes follows the database's devices in the
	// same order.
	q     *queue.Queue
	devMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	s, err := open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	return s, nil
}

func open(ctx context.Context, path string, opts Options) (_ *Store, err error) {
	limits := opts.Limits
	if limits == (store.Limits{}) {
		limits = store.DefaultLimits()
	}
	if err := check.Limits(limits); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("empty path")
	}
	// Create the database readable by its owner only; SQLite gives the
	// -wal and -shm files the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}

	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	wdb, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, err
	}
	closers = append(closers, wdb.Close)
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	closers = append(closers, conn.Close)
	if err := checkPragmas(ctx, conn); err != nil {
		return nil, err
	}
	if err := migrateSchema(ctx, conn, ms, log); err != nil {
		return nil, err
	}

	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	closers = append(closers, rdb.Close)
	rdb.SetMaxOpenConns(maxReadConns)
	rdb.SetMaxIdleConns(maxReadConns)
	readEnvs, err := rdb.PrepareContext(ctx, `SELECT id, expires, content FROM envelopes
		WHERE account = ? AND device = ? AND id > ? ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, err
	}
	closers = append(closers, readEnvs.Close)
	prepared := map[string]**sql.Stmt{}
	s := &Store{limits: limits, log: log, rdb: rdb, wdb: wdb, readEnvs: readEnvs}
	prepared[`SELECT identity_key, created, unidentified_access_key FROM accounts WHERE id = ?`] = &s.readAccount
	prepared[`SELECT id, registration_id, auth_key, created, last_seen FROM devices WHERE account = ? ORDER BY id`] = &s.readDevices
	prepared[`SELECT 1 FROM accounts WHERE id = ?`] = &s.readAccountExists
	prepared[`SELECT 1 FROM devices WHERE account = ? AND id = ?`] = &s.readDeviceExists
	for query, dst := range prepared {
		st, err := rdb.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		closers = append(closers, st.Close)
		*dst = st
	}
	if opts.MailboxDir != "" {
		if s.q, err = openQueue(ctx, conn, opts.MailboxDir, limits, log, opts.OnMailboxCommit); err != nil {
			return nil, err
		}
		closers = append(closers, s.q.Close)
	}
	s.w = newWriter(conn)
	log.Info("sqlite store open", "schema_version", len(ms), "mailboxes", cmp.Or(opts.MailboxDir, "database"))
	return s, nil
}

// dsn returns modernc.org/sqlite's data source name for path. Every
// connection waits busyTimeout for locks and enforces foreign keys; the
// writer also turns on WAL and synchronous=FULL (an acknowledged commit is
// on disk), secure_delete (deleted envelopes and keys are zeroed in the
// file, not left in free space; no measurable cost in the benchmarks) and
// sets the checkpoint size; readers are query_only.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "secure_delete(ON)")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpoint))
	}
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: q.Encode()}
	return u.String()
}

// checkPragmas confirms that the settings durability and deletion depend
// on took: a journal_mode request is silently ignored on some file systems.
func checkPragmas(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	var sync, fk, sd int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&sd); err != nil {
		return err
	}
	if mode != "wal" || sync != 2 || fk != 1 || sd != 1 {
		return fmt.Errorf("pragmas not applied: journal_mode=%s synchronous=%d foreign_keys=%d secure_delete=%d", mode, sync, fk, sd)
	}
	return nil
}

// migrateSchema applies the pending migrations in one transaction.
func migrateSchema(ctx context.Context, conn *sql.Conn, ms []migrate.Migration, log *slog.Logger) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER NOT NULL CHECK (version >= 0))`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	switch err := conn.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES (0)"); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("migrate: %w", err)
	}
	pending, err := migrate.Pending(ms, cur)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range pending {
		if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		if _, err := conn.ExecContext(ctx, "UPDATE schema_version SET version = ?", m.Version); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		log.Info("sqlite store migrated", "schema_version", m.Version)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	s.w.mu.RLock()
	shut := s.w.shut
	s.w.mu.RUnlock()
	if shut {
		return errClosed
	}
	if s.q != nil {
		if err := s.q.Err(); err != nil {
			return fmt.Errorf("ping mailbox queue: %w", err)
		}
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	return nil
}

// Close waits for queued writes to commit and closes the database. Calls
// after Close fail; Close itself may be called again.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.w.close()
		var qerr error
		if s.q != nil {
			qerr = s.q.Close()
		}
		s.closeErr = errors.Join(
			qerr,
			s.readEnvs.Close(),
			s.readAccount.Close(),
			s.readDevices.Close(),
			s.readAccountExists.Close(),
			s.readDeviceExists.Close(),
			s.w.tx.conn.Close(),
			s.rdb.Close(),
			s.wdb.Close(),
		)
	})
	return s.closeErr
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isDuplicate reports a primary-key or unique constraint violation.
func isDuplicate(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isMissingParent reports a foreign-key violation: the account or device a
// row refers to does not exist.
func isMissingParent(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
