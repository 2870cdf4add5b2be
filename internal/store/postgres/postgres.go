// Package postgres is the store.Store a cluster of sottod nodes shares:
// PostgreSQL through pgx's connection pool.
//
// Every method is one statement or one transaction. Concurrency rests on
// row locks taken in one order — account, then device, then the device's
// rows — and on FOR UPDATE SKIP LOCKED when handing out one-time prekeys,
// so that concurrent TakeBundles calls never see the same key. The rare
// deadlock or serialization failure PostgreSQL reports anyway is retried.
//
// The schema lives in migrations/, applied by Open in one transaction under
// an advisory lock (nodes starting together migrate once);
// docs/what-the-server-stores.md describes every column.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
	"github.com/sotto-chat/sotto/internal/store/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

const (
	// maxTxAttempts bounds how often a transaction PostgreSQL aborted for
	// a deadlock or serialization failure is tried; such aborts are rare
	// (a device removed while its mailbox is being acked) and clear on
	// the next attempt.
	maxTxAttempts = 5
	// migrationLock is the advisory lock key under which nodes migrate,
	// so that nodes starting together apply each migration once.
	// ("sotto" in ASCII.)
	migrationLock = 0x736f74746f
	// defaultMaxConns is the pool size unless the URL sets pool_max_conns.
	// pgx's default (the number of CPUs, at least 4) starves a server
	// whose requests wait on the database rather than the CPU; a few
	// nodes of 32 still fit PostgreSQL's default of 100 connections.
	defaultMaxConns = 32
)

// SQLSTATEs the store branches on.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// Options configures a Store.
type Options struct {
	// Limits bound what one account or device can store; the zero value
	// means store.DefaultLimits().
	Limits store.Limits
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Store is a store.Store in PostgreSQL. It is safe for concurrent use.
type Store struct {
	limits store.Limits
	log    *slog.Logger
	pool   *pgxpool.Pool
	app    *appender
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string, as pgx takes; pool_max_conns and the like set the pool) and
// brings its schema up to date.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	s, err := open(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return s, nil
}

func open(ctx context.Context, url string, opts Options) (*Store, error) {
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
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{limits: limits, log: log, pool: pool}
	if err := s.migrate(ctx, ms); err != nil {
		pool.Close()
		return nil, err
	}
	s.app = newAppender(s)
	log.Info("postgres store open", "schema_version", len(ms))
	return s, nil
}

// migrate applies the pending migrations in one transaction.
func (s *Store) migrate(ctx context.Context, ms []migrate.Migration) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version integer NOT NULL CHECK (version >= 0))`); err != nil {
			return err
		}
		var cur int
		err := tx.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := tx.Exec(ctx, "INSERT INTO schema_version (version) VALUES (0)"); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		pending, err := migrate.Pending(ms, cur)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "UPDATE schema_version SET version = $1", m.Version); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			s.log.Info("postgres store migrated", "schema_version", m.Version)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close waits for queued Appends to commit and closes the pool, waiting
// for connections in use to be returned. Appends after Close fail.
func (s *Store) Close() error {
	s.app.close()
	s.pool.Close()
	return nil
}

// inTx runs fn in a transaction, again if PostgreSQL aborts it for a
// deadlock or serialization failure. fn must not keep state across
// attempts.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return retry(func() error { return pgx.BeginFunc(ctx, s.pool, fn) })
}

// retry runs a transaction, again if PostgreSQL aborts it for a deadlock
// or serialization failure, up to maxTxAttempts times.
func retry(tx func() error) error {
	for attempt := 1; ; attempt++ {
		err := tx()
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return err
		}
	}
}

func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func retryable(err error) bool {
	c := sqlState(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

func isDuplicate(err error) bool { return sqlState(err) == codeUniqueViolation }

func isMissingParent(err error) bool { return sqlState(err) == codeForeignKeyViolation }
