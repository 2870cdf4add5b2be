package subpoena

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver sottod's SQLite store uses
)

// holding is everything the server holds after the workload.
type holding struct {
	mode string
	// tables are the database's tables; queue the mailbox queue's keys
	// and values as tables (SQLite mode).
	tables, queue []table
	// files are the raw bytes of every file in the data directory, in
	// two snapshots: while the server ran and after it stopped.
	files []file
	// dataFiles are the data directory's files after the stop, by
	// relative path, for the documentation check.
	dataFiles []string
	logs      []string
	metrics   []string
	// config is the configuration file and what it points to (the
	// PostgreSQL URL file).
	config []file
}

// table is one table's rows; a value is nil, []byte, int64, float64,
// string, bool or (PostgreSQL) another type pgx returns.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

type file struct {
	name string
	data []byte
}

// rowCount returns the rows of the database's tables.
func (h *holding) rowCount() int {
	n := 0
	for _, t := range h.tables {
		n += len(t.rows)
	}
	return n
}

// readFiles reads every regular file under dir, named label/relative
// path. Files that vanish while being read (the server is running) are
// skipped.
func readFiles(dir, label string) ([]file, error) {
	var out []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, file{label + "/" + filepath.ToSlash(rel), b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return out, nil
}

// listFiles returns the relative paths of the regular files under dir.
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}

// copyDir copies the regular files of src (not its subdirectories) into
// a new directory dst.
func copyDir(src, dst string, names ...string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	if names == nil {
		es, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// collectSQLite reads every table of a copy of the SQLite database
// (with its write-ahead log, so that nothing is checkpointed in the
// server's own directory).
func collectSQLite(ctx context.Context, data, scratch string) ([]table, error) {
	if err := copyDir(data, scratch, "sotto.db", "sotto.db-wal", "sotto.db-shm"); err != nil {
		return nil, fmt.Errorf("copy the database: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(scratch, "sotto.db"))
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	var names []string
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var out []table
	for _, n := range names {
		t, err := sqliteTable(ctx, db, n)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func sqliteTable(ctx context.Context, db *sql.DB, name string) (table, error) {
	t := table{name: name}
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	if t.columns, err = rows.Columns(); err != nil {
		return t, err
	}
	for rows.Next() {
		vals := make([]any, len(t.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return t, err
		}
		t.rows = append(t.rows, vals)
	}
	return t, rows.Err()
}

// collectPostgres reads every table of every schema but the system's.
func collectPostgres(ctx context.Context, dbURL string) ([]table, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
		ORDER BY table_schema, table_name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var names [][2]string
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, [2]string{s, n})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []table
	for _, sn := range names {
		t := table{name: sn[1]}
		if sn[0] != "public" {
			t.name = sn[0] + "." + sn[1]
		}
		rows, err := conn.Query(ctx, "SELECT * FROM "+pgx.Identifier{sn[0], sn[1]}.Sanitize())
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		for _, f := range rows.FieldDescriptions() {
			t.columns = append(t.columns, f.Name)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("table %s: %w", t.name, err)
			}
			t.rows = append(t.rows, vals)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Key layout of the mailbox queue (internal/store/queue's package
// documentation): 'm' ‖ account (16) ‖ device (4) ‖ id (8) → expires day
// (4) ‖ content, and 'c' ‖ account (16) ‖ device (4) → next id (8).
const (
	queueEnvelope = 'm'
	queueCounter  = 'c'
	queueBoxLen   = 1 + 16 + 4
)

// collectQueue reads every key and value of a copy of the mailbox queue,
// as three tables: envelopes, counters, and keys of any other kind (which
// the documentation does not describe).
func collectQueue(dir, scratch string) ([]table, error) {
	if err := copyDir(dir, scratch); err != nil {
		return nil, fmt.Errorf("copy the queue: %w", err)
	}
	db, err := pebble.Open(scratch, &pebble.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil {
		return nil, fmt.Errorf("open the queue: %w", err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	env := table{name: "queue envelopes", columns: []string{"key: account", "key: device", "key: id", "value: expires", "value: content"}}
	ctr := table{name: "queue counters", columns: []string{"key: account", "key: device", "value: next id"}}
	other := table{name: "queue other keys", columns: []string{"key", "value"}}
	for it.First(); it.Valid(); it.Next() {
		k, v := bytes.Clone(it.Key()), bytes.Clone(it.Value())
		switch {
		case len(k) == queueBoxLen+8 && k[0] == queueEnvelope && len(v) >= 4:
			env.rows = append(env.rows, []any{k[1:17], int64(binary.BigEndian.Uint32(k[17:21])),
				int64(binary.BigEndian.Uint64(k[21:])), int64(binary.BigEndian.Uint32(v)), v[4:]})
		case len(k) == queueBoxLen && k[0] == queueCounter && len(v) == 8:
			ctr.rows = append(ctr.rows, []any{k[1:17], int64(binary.BigEndian.Uint32(k[17:21])), int64(binary.BigEndian.Uint64(v))})
		default:
			other.rows = append(other.rows, []any{k, v})
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return []table{env, ctr, other}, nil
}

// quietPebble discards pebble's messages (replaying the copied queue's
// log is expected); Fatalf panics, as pebble's default logger exits.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// lines splits text into its non-empty lines.
func lines(b []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// units turns the holding into what the searcher reads: each row (pairs
// checked), each file (raw bytes), each log and metrics line (pairs
// checked), each configuration file.
func (h *holding) units() []unit {
	var out []unit
	for _, ts := range [][]table{h.tables, h.queue} {
		for _, t := range ts {
			for i, r := range t.rows {
				u := unit{where: fmt.Sprintf("%s table %s, row %d", h.mode, t.name, i+1), pairs: true, pairOK: pairAllowed[t.name]}
				for j, v := range r {
					u.cells = append(u.cells, cell{name: t.columns[j], b: valueBytes(v)})
				}
				out = append(out, u)
			}
		}
	}
	for _, f := range h.files {
		out = append(out, unit{where: "file " + f.name, cells: []cell{{b: f.data}}})
	}
	for _, f := range h.config {
		out = append(out, unit{where: "configuration " + f.name, cells: []cell{{b: f.data}}})
	}
	for i, l := range h.logs {
		out = append(out, unit{where: fmt.Sprintf("log line %d", i+1), cells: []cell{{b: []byte(l)}}, pairs: true})
	}
	for i, l := range h.metrics {
		out = append(out, unit{where: fmt.Sprintf("/metrics line %d", i+1), cells: []cell{{b: []byte(l)}}, pairs: true})
	}
	return out
}

// valueBytes is what a value is searched as: bytes as they are, text as
// UTF-8, anything else in its printed form.
func valueBytes(v any) []byte {
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		return v
	case string:
		return []byte(v)
	default:
		return fmt.Append(nil, v)
	}
}

// dedupeFiles drops files whose bytes an earlier one had (the two
// snapshots share most files).
func dedupeFiles(fs []file) []file {
	seen := map[[sha256.Size]byte]bool{}
	var out []file
	for _, f := range fs {
		if h := sha256.Sum256(f.data); !seen[h] {
			seen[h] = true
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
