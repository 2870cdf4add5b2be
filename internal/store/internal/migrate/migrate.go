// Package migrate reads a store's schema migrations: numbered SQL files
// embedded in the store package, applied in order inside one transaction.
//
// A migration file is named NNNN_description.sql. Versions start at 1 and
// leave no gaps, so a schema_version of n means files 1..n were applied.
// Each backend records the version in its own schema_version table and
// applies what is missing when it opens.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string // the file name, for logs and errors
	SQL     string
}

// Load returns the migrations in dir of fsys in version order. It fails on
// a file that is not NNNN_description.sql, a repeated version, or a gap.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %q: not a .sql file", name)
		}
		num, _, ok := strings.Cut(name, "_")
		if !ok || len(num) != 4 {
			return nil, fmt.Errorf("migration %q: name is not NNNN_description.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migration %q: bad version number", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: version %d, want %d (versions start at 1 without gaps)", m.Name, m.Version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %q", dir)
	}
	return ms, nil
}

// Pending returns the migrations after version current. It fails if
// current is newer than every migration: the database was written by a
// newer binary, which this one must not touch.
func Pending(ms []Migration, current int) ([]Migration, error) {
	if current < 0 || current > len(ms) {
		return nil, fmt.Errorf("schema version %d is newer than this binary's %d", current, len(ms))
	}
	return ms[current:], nil
}
