package sqlitestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/internal/storetest"
	"github.com/sotto-chat/sotto/internal/testserver"
)

func open(t *testing.T, path string, key []byte) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) client.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"), bytes.Repeat([]byte{7}, KeySize))
	})
}

func TestReopenAndWrongKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	key, err := KeyFromFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, path, key)
	if err := s.Apply(ctx, []client.Write{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The same key file gives the same key, and the data back.
	again, err := KeyFromFile(filepath.Join(dir, "key"))
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("key file read back: %v", err)
	}
	s = open(t, path, again)
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	s.Close()
	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	if s, err := Open(ctx, path, wrong); err == nil {
		s.Close()
		t.Fatal("opened with a wrong key")
	}
	// A key file others can read is refused.
	os.Chmod(filepath.Join(dir, "key"), 0o644)
	if _, err := KeyFromFile(filepath.Join(dir, "key")); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key file mode 0644: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v", fi.Mode().Perm())
	}
}

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	k1, err := KeyFromPassphrase("correct horse", salt)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := KeyFromPassphrase("correct horse", salt)
	k3, _ := KeyFromPassphrase("correct horsf", salt)
	if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) || len(k1) != KeySize {
		t.Fatal("passphrase keys: same passphrase must give the same key, another another")
	}
	if _, err := KeyFromPassphrase("", salt); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

// TestCanary: two accounts talk through a real sottod, one of them on an
// encrypted store; afterwards nothing they said, and none of the keys or
// ids it holds, can be found in the database's files, in any encoding.
func TestCanary(t *testing.T) {
	url := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	key, err := KeyFromFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	st := open(t, path, key)
	alice, err := client.Create(ctx, client.Options{Server: url, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Create(ctx, client.Options{Server: url, Store: client.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- alice.Run(runCtx) }()
	var once sync.Once
	finish := func() { once.Do(func() { stop(); <-done }) }
	defer finish()

	canaries := []string{"canary-sent-7f3a9c", "canary-received-51d2e8"}
	if _, err := alice.SendText(ctx, bob.Account(), canaries[0]+" to Bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, alice.Account(), canaries[1]+" to Alice"); err != nil {
		t.Fatal(err)
	}
	for got := false; !got; {
		select {
		case e := <-alice.Events():
			_, got = e.(client.MessageEvent)
		case <-ctx.Done():
			t.Fatal("Alice received nothing")
		}
	}
	msgs, err := alice.Messages(ctx, bob.Account())
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Alice stored %d messages: %v", len(msgs), err)
	}
	// What the store holds in the clear: every value and key it has.
	var secrets [][]byte
	for _, c := range canaries {
		secrets = append(secrets, []byte(c))
	}
	secrets = append(secrets, []byte(alice.Account().String()), []byte(bob.Account().String()))
	err = st.Scan(ctx, "", func(k string, v []byte) error {
		secrets = append(secrets, []byte(k))
		if len(v) >= 16 {
			secrets = append(secrets, v[:16], v[len(v)-16:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	finish()
	alice.Close()
	st.Close()

	var files []byte
	matches, _ := filepath.Glob(path + "*")
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b...)
	}
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, s := range secrets {
		for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
			if len(enc) >= 8 && bytes.Contains(files, enc) {
				t.Errorf("found %q in the database files", enc)
			}
		}
	}
	// And the files do hold it: the same key opens them.
	st = open(t, path, key)
	if _, err := st.Get(ctx, "account"); err != nil {
		t.Fatalf("the store after the run: %v", err)
	}
}

// TestApplyStream: writes put by fill are one transaction: all of them
// when fill succeeds, none when it fails half way.
func TestApplyStream(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), bytes.Repeat([]byte{7}, KeySize))
	if err := s.Apply(ctx, []client.Write{{Key: "old", Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the source broke")
	err := s.ApplyStream(ctx, func(put func(client.Write) error) error {
		for i := range 1000 {
			if err := put(client.Write{Key: fmt.Sprintf("k/%04d", i), Value: []byte("v")}); err != nil {
				return err
			}
		}
		if err := put(client.Write{Key: "old"}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("ApplyStream: %v", err)
	}
	if v, err := s.Get(ctx, "old"); err != nil || string(v) != "1" {
		t.Fatalf("a failed stream deleted a key: %q, %v", v, err)
	}
	if _, err := s.Get(ctx, "k/0000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a failed stream left a write: %v", err)
	}
	err = s.ApplyStream(ctx, func(put func(client.Write) error) error {
		buf := []byte("a")
		for i := range 1000 {
			buf[0] = byte('a' + i%26) // put does not keep the value
			if err := put(client.Write{Key: fmt.Sprintf("k/%04d", i), Value: buf}); err != nil {
				return err
			}
		}
		return put(client.Write{Key: "old"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k/0027"); err != nil || string(v) != "b" {
		t.Fatalf("k/0027: %q, %v", v, err)
	}
	if _, err := s.Get(ctx, "old"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("old: %v", err)
	}
}
