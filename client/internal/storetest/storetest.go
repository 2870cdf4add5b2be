// Package storetest is the conformance suite every client.Store passes.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sotto-chat/sotto/client"
)

// Run checks the Store that open makes (a new, empty one per call).
func Run(t *testing.T, open func(t *testing.T) client.Store) {
	ctx := context.Background()
	t.Run("GetPutDelete", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("get of a missing key: %v", err)
		}
		if err := s.Apply(ctx, []client.Write{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte{}}}); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, "a"); err != nil || string(v) != "1" {
			t.Fatalf("get a: %q, %v", v, err)
		}
		if v, err := s.Get(ctx, "b"); err != nil || len(v) != 0 {
			t.Fatalf("an empty value is a value: %q, %v", v, err)
		}
		if err := s.Apply(ctx, []client.Write{{Key: "a", Value: []byte("2")}, {Key: "b"}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Get(ctx, "a"); string(v) != "2" {
			t.Fatalf("overwrite: %q", v)
		}
		if _, err := s.Get(ctx, "b"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("deleted key: %v", err)
		}
		// Values are copies.
		v, _ := s.Get(ctx, "a")
		v[0] = 'x'
		if w, _ := s.Get(ctx, "a"); string(w) != "2" {
			t.Fatal("a returned value aliases the store")
		}
	})
	t.Run("ScanOrderAndPrefix", func(t *testing.T) {
		s := open(t)
		var writes []client.Write
		for _, k := range []string{"m/b/2", "m/a/10", "m/a/02", "m/", "n/a", "m", "l/z"} {
			writes = append(writes, client.Write{Key: k, Value: []byte(k)})
		}
		if err := s.Apply(ctx, writes); err != nil {
			t.Fatal(err)
		}
		var got []string
		err := s.Scan(ctx, "m/", func(k string, v []byte) error {
			if !bytes.Equal(v, []byte(k)) {
				return fmt.Errorf("value of %q is %q", k, v)
			}
			got = append(got, k)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"m/", "m/a/02", "m/a/10", "m/b/2"}; !slices.Equal(got, want) {
			t.Fatalf("scan m/: %q, want %q", got, want)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.Scan(ctx, "", func(string, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("scan that stops: %v after %d", err, n)
		}
		// fn may use the store.
		err = s.Scan(ctx, "m/a/", func(k string, _ []byte) error {
			return s.Apply(ctx, []client.Write{{Key: k + "/seen", Value: []byte{1}}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "m/a/02/seen"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ApplyIsAtomic", func(t *testing.T) {
		s := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Apply(cctx, []client.Write{{Key: "x", Value: []byte{1}}}); err == nil {
			t.Fatal("apply with a cancelled context succeeded")
		}
		if _, err := s.Get(ctx, "x"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("a failed apply wrote: %v", err)
		}
	})
}
