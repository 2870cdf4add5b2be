package client_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// BenchmarkSendToEvent measures the time from SendText on one device to
// the MessageEvent on the other's, through a real sottod on loopback
// (SQLite with the mailbox queue, fsync on): encrypt, seal, the server's
// durable store and push, unseal, decrypt, the receiver's store. One
// message at a time; ns/op is the mean, p50 and p99 are reported too.
//
//	go test -run '^$' -bench SendToEvent -benchtime 500x ./client
func BenchmarkSendToEvent(b *testing.B) {
	url := testserver.Start(b)
	ctx := b.Context()
	mk := func() *client.Client {
		c, err := client.Create(ctx, client.Options{Server: url, Store: client.NewMemoryStore()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := mk(), mk()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- bob.Run(runCtx) }()
	b.Cleanup(func() { stop(); <-done })
	wait := func() {
		for {
			select {
			case e := <-bob.Events():
				if _, ok := e.(client.MessageEvent); ok {
					return
				}
			case <-time.After(20 * time.Second):
				b.Fatal("no message")
			}
		}
	}
	// Warm up: the first message starts the session.
	if _, err := alice.SendText(ctx, bob.Account(), "warm-up"); err != nil {
		b.Fatal(err)
	}
	wait()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := alice.SendText(ctx, bob.Account(), "a message of ordinary length, about sixty bytes"); err != nil {
			b.Fatal(err)
		}
		wait()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
