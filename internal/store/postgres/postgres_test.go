package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/storetest"
)

// testURL returns TEST_POSTGRES_URL. Without it the test skips, except on
// CI (CI=true), where it fails: CI must never pass by testing nothing.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TEST_POSTGRES_URL is not set: run scripts/test, which starts a private PostgreSQL")
		}
		t.Skip("TEST_POSTGRES_URL is not set; scripts/test starts a private PostgreSQL and sets it")
	}
	return u
}

// freshSchema creates an empty schema, dropped when t ends, and returns a
// URL whose connections use it.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := testURL(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := "test_" + hex.EncodeToString(randBytes(8))
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		admin.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		admin.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_POSTGRES_URL must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func openTest(t *testing.T, l store.Limits) store.Store {
	t.Helper()
	s, err := Open(t.Context(), freshSchema(t), Options{Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, openTest)
}

func TestReopen(t *testing.T) {
	u := freshSchema(t)
	for range 2 {
		s, err := Open(t.Context(), u, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var v int
		err = s.pool.QueryRow(t.Context(), "SELECT version FROM schema_version").Scan(&v)
		s.Close()
		if err != nil || v != 1 {
			t.Fatalf("schema_version = %d, %v; want 1", v, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	u := freshSchema(t)
	s, err := Open(t.Context(), u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.pool.Exec(t.Context(), "UPDATE schema_version SET version = 99")
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), u, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer binary")
	}
}

func TestOpenRejectsBadLimits(t *testing.T) {
	if _, err := Open(t.Context(), "postgres://127.0.0.1:1/x", Options{Limits: store.Limits{MaxDevices: 1}}); err == nil {
		t.Fatal("Open accepted zero limits")
	}
}
