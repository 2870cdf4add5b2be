package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/storetest"
)

func openTest(t *testing.T, l store.Limits) store.Store {
	t.Helper()
	return openWith(t, Options{Limits: l})
}

// openQueued opens a store whose mailboxes are in a queue (store/queue).
func openQueued(t *testing.T, l store.Limits) store.Store {
	t.Helper()
	return openWith(t, Options{Limits: l, MailboxDir: filepath.Join(t.TempDir(), "mailboxes")})
}

func openWith(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "sotto.db"), opts)
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
	t.Run("table", func(t *testing.T) { storetest.Run(t, openTest) })
	t.Run("queue", func(t *testing.T) { storetest.Run(t, openQueued) })
}

func testAccount(t *testing.T, s *Store, n byte) store.AccountID {
	t.Helper()
	id := store.AccountID{n}
	err := s.CreateAccount(t.Context(), store.Account{ID: id, IdentityKey: []byte{5, n}},
		store.Device{ID: 1, AuthKey: []byte{5, n}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sotto.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := testAccount(t, s, 1)
	e := &store.Envelope{Account: id, Device: 1, Content: []byte("kept"), Expires: 9}
	if err := s.Append(t.Context(), []*store.Envelope{e}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(t.Context(), []*store.Envelope{e}); !errors.Is(err, errClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s, err = Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	envs, err := s.Read(t.Context(), id, 1, 0, 10)
	if err != nil || len(envs) != 1 || string(envs[0].Content) != "kept" || envs[0].ID != e.ID {
		t.Fatalf("after reopening: %+v, %v", envs, err)
	}
	var v int
	if err := s.rdb.QueryRowContext(t.Context(), "SELECT version FROM schema_version").Scan(&v); err != nil || v != 2 {
		t.Errorf("schema_version = %d, %v; want 2", v, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sotto.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.w.do(t.Context(), 1, func(x *wtx) error {
		_, err := x.exec("UPDATE schema_version SET version = 99")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer binary")
	}
}

func TestOpenRejectsBadLimits(t *testing.T) {
	_, err := Open(t.Context(), filepath.Join(t.TempDir(), "x.db"), Options{Limits: store.Limits{MaxDevices: 1}})
	if err == nil {
		t.Fatal("Open accepted zero limits")
	}
}

func TestCancelledAppendWritesNothing(t *testing.T) {
	s := openTest(t, store.DefaultLimits()).(*Store)
	id := testAccount(t, s, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := &store.Envelope{Account: id, Device: 1, Content: []byte("x")}
	if err := s.Append(ctx, []*store.Envelope{e}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if envs, _ := s.Read(t.Context(), id, 1, 0, 10); len(envs) != 0 {
		t.Error("a cancelled Append stored its envelope")
	}
}

// holdWriter blocks the writer until the returned func is called, so that
// writes submitted meanwhile are committed as one batch.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started := make(chan struct{})
	hold := make(chan struct{})
	go func() {
		_ = s.w.do(context.Background(), 1, func(*wtx) error {
			close(started)
			<-hold
			return nil
		})
	}()
	<-started
	return func() { close(hold) }
}

// waitQueued waits until n writes are queued behind a held writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.w.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(s.w.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchIsolation commits writes that succeed and writes that fail in
// one batch: each failure leaves the others standing.
func TestBatchIsolation(t *testing.T) {
	l := store.DefaultLimits()
	l.MaxMailbox = 2
	s := openTest(t, l).(*Store)
	ctx := t.Context()
	a := testAccount(t, s, 1)
	b := testAccount(t, s, 2)
	env := func(id store.AccountID, c string) *store.Envelope {
		return &store.Envelope{Account: id, Device: 1, Content: []byte(c), Expires: 1}
	}
	if err := s.Append(ctx, []*store.Envelope{env(b, "b1"), env(b, "b2")}); err != nil {
		t.Fatal(err)
	}

	release := holdWriter(t, s)
	calls := []struct {
		name string
		envs []*store.Envelope
		want error
	}{
		{"fits", []*store.Envelope{env(a, "a1")}, nil},
		{"b is full (clean)", []*store.Envelope{env(b, "b3")}, store.ErrMailboxFull},
		{"a fits, b full (savepoint)", []*store.Envelope{env(a, "a2"), env(b, "b4")}, store.ErrMailboxFull},
		{"no such device", []*store.Envelope{{Account: a, Device: 7, Content: []byte("x")}}, store.ErrNotFound},
		{"fills a", []*store.Envelope{env(a, "a3")}, nil},
	}
	errs := make([]chan error, len(calls))
	for i, c := range calls {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.Append(ctx, c.envs) }()
		waitQueued(t, s, i+1)
	}
	release()
	for i, c := range calls {
		if err := <-errs[i]; !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
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
}

// TestBatchAbort: a write that fails after writing without a savepoint
// undoes its whole batch, and every write in it reports the failure.
func TestBatchAbort(t *testing.T) {
	s := openTest(t, store.DefaultLimits()).(*Store)
	ctx := t.Context()
	a := testAccount(t, s, 1)
	release := holdWriter(t, s)
	appended := make(chan error, 1)
	go func() {
		appended <- s.Append(ctx, []*store.Envelope{{Account: a, Device: 1, Content: []byte("x")}})
	}()
	waitQueued(t, s, 1)
	broken := make(chan error, 1)
	go func() {
		broken <- s.w.doClean(ctx, 1, func(x *wtx) error {
			if _, err := x.exec("UPDATE accounts SET created = 77"); err != nil {
				return err
			}
			return errors.New("broken after writing")
		})
	}()
	waitQueued(t, s, 2)
	release()
	if err := <-appended; err == nil {
		t.Error("an Append in an aborted batch succeeded")
	}
	if err := <-broken; err == nil {
		t.Error("the broken write succeeded")
	}
	if envs, _ := s.Read(ctx, a, 1, 0, 10); len(envs) != 0 {
		t.Error("an aborted batch stored an envelope")
	}
	if acct, _ := s.Account(ctx, a); acct.Created == 77 {
		t.Error("an aborted batch kept a write")
	}
	// The writer goes on.
	if err := s.Append(ctx, []*store.Envelope{{Account: a, Device: 1, Content: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
}

// TestDeletedContentLeavesFile: once acked (or its device removed) and the
// store closed, an envelope's bytes are nowhere in the database's files.
func TestDeletedContentLeavesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sotto.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := testAccount(t, s, 1)
	if err := s.AddDevice(t.Context(), store.Device{Account: id, ID: 2, AuthKey: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	secret := func(i int) []byte { return []byte(fmt.Sprintf("sealed-secret-%04d-%s", i, strings.Repeat("x", 200))) }
	var acked []store.EnvelopeID
	for i := range 50 {
		e := &store.Envelope{Account: id, Device: store.DeviceID(1 + i%2), Content: secret(i), Expires: 10}
		if err := s.Append(t.Context(), []*store.Envelope{e}); err != nil {
			t.Fatal(err)
		}
		if e.Device == 1 {
			acked = append(acked, e.ID)
		}
	}
	if err := s.Ack(t.Context(), id, 1, acked); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDevice(t.Context(), id, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("sealed-secret-")) {
			t.Errorf("%s still holds deleted envelope content", filepath.Base(f))
		}
	}
}

func TestDatabaseFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), filepath.Join(dir, "sotto.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"sotto.db", "sotto.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestQueueTakesOverTable: a database that kept its mailboxes in the
// envelopes table, opened with a queue, moves every envelope into the
// queue in order, once.
func TestQueueTakesOverTable(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "sotto.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := testAccount(t, s, 1)
	b := testAccount(t, s, 2)
	var want []string
	for i := range 2500 { // more than one moveChunk
		acct := a
		if i%3 == 0 {
			acct = b
		} else {
			want = append(want, fmt.Sprint(i))
		}
		env := &store.Envelope{Account: acct, Device: 1, Content: []byte(fmt.Sprint(i)), Expires: 30000}
		if err := s.Append(ctx, []*store.Envelope{env}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second open finds nothing left to move
		s, err = Open(ctx, path, Options{MailboxDir: filepath.Join(dir, "mailboxes")})
		if err != nil {
			t.Fatal(err)
		}
		envs, err := s.Read(ctx, a, 1, 0, 5000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range envs {
			got = append(got, string(e.Content))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("queue holds %d envelopes for a, want %d in order", len(got), len(want))
		}
		if left, err := s.readTable(ctx, a, 1, 0, 10); err != nil || len(left) != 0 {
			t.Fatalf("table still holds %d envelopes (%v)", len(left), err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
