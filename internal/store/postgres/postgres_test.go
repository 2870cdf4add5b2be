package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
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
		if err != nil || v != 2 {
			t.Fatalf("schema_version = %d, %v; want 2", v, err)
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

// TestAppendBatchIsolation decides Appends that succeed and Appends that
// fail in one transaction: each failure leaves the others standing.
func TestAppendBatchIsolation(t *testing.T) {
	l := store.DefaultLimits()
	l.MaxMailbox = 2
	s := openTest(t, l).(*Store)
	ctx := t.Context()
	a, b := store.AccountID{1}, store.AccountID{2}
	for _, id := range []store.AccountID{a, b} {
		err := s.CreateAccount(ctx, store.Account{ID: id, IdentityKey: []byte{5}}, store.Device{ID: 1, AuthKey: []byte{5}})
		if err != nil {
			t.Fatal(err)
		}
	}
	env := func(id store.AccountID, c string) *store.Envelope {
		return &store.Envelope{Account: id, Device: 1, Content: []byte(c), Expires: 1}
	}
	if err := s.Append(ctx, []*store.Envelope{env(b, "b1"), env(b, "b2")}); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		envs []*store.Envelope
		want error
	}{
		{"fits", []*store.Envelope{env(a, "a1")}, nil},
		{"b is full", []*store.Envelope{env(b, "b3")}, store.ErrMailboxFull},
		{"a fits, b full", []*store.Envelope{env(a, "a2"), env(b, "b4")}, store.ErrMailboxFull},
		{"no such device", []*store.Envelope{{Account: a, Device: 7, Content: []byte("x")}}, store.ErrNotFound},
		{"fills a", []*store.Envelope{env(a, "a3")}, nil},
		{"a now full", []*store.Envelope{env(a, "a4")}, store.ErrMailboxFull},
	}
	var reqs []*appendReq
	for _, c := range calls {
		mbs, err := check.Append(c.envs)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &appendReq{mbs: mbs, n: len(c.envs)})
	}
	var results []error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		results, err = s.app.attempt(tx, reqs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range calls {
		if err := results[i]; !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if f0, f4 := reqs[0].firsts[0], reqs[4].firsts[0]; f4 != f0+1 {
		t.Errorf("ids %d then %d in one batch, want consecutive", f0, f4)
	}
	for _, m := range []struct {
		id   store.AccountID
		want string
	}{{a, "a1a3"}, {b, "b1b2"}} {
		envs, err := s.Read(ctx, m.id, 1, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, e := range envs {
			got += string(e.Content)
		}
		if got != m.want {
			t.Errorf("mailbox holds %q, want %q", got, m.want)
		}
	}
	// The counters stayed true: a has room for nothing more, b neither.
	for _, id := range []store.AccountID{a, b} {
		if err := s.Append(ctx, []*store.Envelope{env(id, "x")}); !errors.Is(err, store.ErrMailboxFull) {
			t.Errorf("Append to a full mailbox: %v", err)
		}
	}
}

func TestAppendAfterClose(t *testing.T) {
	s := openTest(t, store.DefaultLimits()).(*Store)
	s.app.close()
	err := s.Append(t.Context(), []*store.Envelope{{Account: store.AccountID{1}, Device: 1, Content: []byte("x")}})
	if !errors.Is(err, errClosed) {
		t.Fatalf("Append after close: %v", err)
	}
}
