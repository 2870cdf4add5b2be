//go:build !js

// Package sqlitestore is the client's Store on native builds: one SQLite
// file, encrypted whole (every page, index and journal, so keys, names and
// the shape of the history too) with AES-256-XTS by the xts VFS of
// github.com/ncruces/go-sqlite3, which runs SQLite without cgo.
//
// The encryption key comes from a key file (64 random bytes, mode 0600,
// made on first use) or from a passphrase (Argon2id with a salt kept next
// to the database). XTS hides contents but not which sectors change, and
// it does not detect tampering: the file is private to its user, and the
// client's messages are authenticated end to end anyway.
package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/crypto/argon2"

	_ "github.com/ncruces/go-sqlite3/driver"  // database/sql driver "sqlite3"
	_ "github.com/ncruces/go-sqlite3/vfs/xts" // the "xts" VFS

	"github.com/sotto-chat/sotto/client"
)

// Sizes and costs, each with its reason.
const (
	// KeySize is an AES-256-XTS key: two AES-256 keys.
	KeySize = 64
	// saltSize is the passphrase salt: 16 random bytes, as RFC 9106
	// recommends.
	saltSize = 16
	// Argon2id cost for a passphrase (RFC 9106's second recommended
	// option: 3 passes over 64 MiB), about a tenth of a second here:
	// paid once per start, and every guess of an attacker pays it too.
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
	// cacheKiB bounds SQLite's page cache (the default is 2 MiB): a
	// large change, such as an import of 100,000 messages (about 25 MiB
	// of pages), stays in memory until it commits instead of spilling
	// pages to the WAL and reading them back (3.0 s → 2.2 s for that
	// import). Memory is taken only as pages are used.
	cacheKiB = 64 << 10
)

// Store is a client.Store in an encrypted SQLite file.
type Store struct {
	db *sql.DB
}

var _ client.StreamStore = (*Store)(nil)

// Open opens (creating if needed) the store at path with a 64-byte key.
func Open(ctx context.Context, path string, key []byte) (*Store, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sqlitestore: key of %d bytes, want %d", len(key), KeySize)
	}
	dsn := "file:" + path + "?vfs=xts&hexkey=" + hex.EncodeToString(key) +
		"&_pragma=journal_mode(wal)&_pragma=synchronous(full)&_pragma=secure_delete(on)" +
		"&_pragma=temp_store(memory)&_pragma=cache_size(-" + strconv.Itoa(cacheKiB) + ")&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	// One writer; SQLite serializes writers anyway, and one connection
	// keeps the key in one place.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`); err != nil {
		db.Close()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlitestore: open %s (wrong key, or not a Sotto store?): %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return &Store{db: db}, nil
}

func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, client.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: get: %w", err)
	}
	return v, nil
}

func (s *Store) Scan(ctx context.Context, prefix string, fn func(string, []byte) error) error {
	// Keys are ASCII, so every key with the prefix sorts below
	// prefix+"\xff" in SQLite's byte order.
	rows, err := s.db.QueryContext(ctx, `SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k`, prefix, prefix+"\xff")
	if err != nil {
		return fmt.Errorf("sqlitestore: scan: %w", err)
	}
	type kv struct {
		k string
		v []byte
	}
	// Read all first: fn may call the store, which has one connection.
	var all []kv
	for rows.Next() {
		var r kv
		if err := rows.Scan(&r.k, &r.v); err != nil {
			rows.Close()
			return fmt.Errorf("sqlitestore: scan: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlitestore: scan: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlitestore: scan: %w", err)
	}
	for _, r := range all {
		if err := fn(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// Apply makes every write in one transaction.
func (s *Store) Apply(ctx context.Context, writes []client.Write) error {
	return s.ApplyStream(ctx, func(put func(client.Write) error) error {
		for _, w := range writes {
			if err := put(w); err != nil {
				return err
			}
		}
		return nil
	})
}

// ApplyStream makes the writes that fill puts in one transaction, each as
// it comes (client.StreamStore): a change larger than memory (an import
// with its media) is still all or nothing. The statements are prepared
// once per transaction, which makes a large change several times faster
// than one statement compiled per write.
func (s *Store) ApplyStream(ctx context.Context, fill func(put func(client.Write) error) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: apply: %w", err)
	}
	defer tx.Rollback()
	var upsert, del *sql.Stmt
	put := func(w client.Write) error {
		var err error
		if w.Value == nil {
			if del == nil {
				if del, err = tx.PrepareContext(ctx, `DELETE FROM kv WHERE k = ?`); err != nil {
					return fmt.Errorf("sqlitestore: apply: %w", err)
				}
			}
			_, err = del.ExecContext(ctx, w.Key)
		} else {
			if upsert == nil {
				if upsert, err = tx.PrepareContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`); err != nil {
					return fmt.Errorf("sqlitestore: apply: %w", err)
				}
			}
			_, err = upsert.ExecContext(ctx, w.Key, w.Value)
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: apply: %w", err)
		}
		return nil
	}
	if err := fill(put); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: apply: %w", err)
	}
	return nil
}

func (s *Store) Close() error { return s.db.Close() }

// KeyFromFile reads the key in path, or makes one there (mode 0600) if
// the file does not exist. A key file others may read is refused.
func KeyFromFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, KeySize)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: key file: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("sqlitestore: key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlitestore: key file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: key file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sqlitestore: key file %s can be read by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("sqlitestore: key file %s holds %d bytes, want %d", path, len(b), KeySize)
	}
	return b, nil
}

// KeyFromPassphrase derives the key from a passphrase with Argon2id. The
// salt lives in saltPath, made on first use.
func KeyFromPassphrase(passphrase, saltPath string) ([]byte, error) {
	if passphrase == "" {
		return nil, errors.New("sqlitestore: empty passphrase")
	}
	salt, err := os.ReadFile(saltPath)
	if errors.Is(err, fs.ErrNotExist) {
		salt = make([]byte, saltSize)
		rand.Read(salt)
		if err := os.WriteFile(saltPath, salt, 0o600); err != nil {
			return nil, fmt.Errorf("sqlitestore: salt: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("sqlitestore: salt: %w", err)
	}
	if len(salt) != saltSize {
		return nil, fmt.Errorf("sqlitestore: salt file %s holds %d bytes, want %d", saltPath, len(salt), saltSize)
	}
	return argon2.IDKey([]byte(passphrase), salt, argonTime, argonMemory, argonThreads, KeySize), nil
}
