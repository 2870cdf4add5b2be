//go:build unix

package client_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/sqlitestore"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// BenchmarkClientCPU measures the client's own CPU per message: sottod
// runs as a separate process, so this process's CPU time (user + system,
// every goroutine, GC included) is the clients' alone. Sending: SendText
// with the receiver offline (pad, encrypt, seal, the request, the store).
// Receiving: the receiver comes online and drains the messages (the
// push, unseal, decrypt, dedupe, the store, the ack and the delivery
// receipt it sends back). The session is in its steady state: both
// sides have sent, so messages carry no PreKey header.
//
//	go test -run '^$' -bench ClientCPU -benchtime 2000x -count 3 ./client
func BenchmarkClientCPU(b *testing.B) {
	bin := testserver.Build(b)
	dir := b.TempDir()
	srv := testserver.StartProcess(b, bin, filepath.Join(dir, "data"), filepath.Join(dir, "sottod.log"),
		"-register-burst", "1000") // every account comes from 127.0.0.1
	b.Cleanup(func() { srv.Stop(b) })

	b.Run("memory-store", func(b *testing.B) {
		benchClientCPU(b, srv.URL, func() client.Store { return client.NewMemoryStore() })
	})
	b.Run("sqlite-store", func(b *testing.B) {
		benchClientCPU(b, srv.URL, func() client.Store {
			key := make([]byte, sqlitestore.KeySize)
			rand.Read(key)
			st, err := sqlitestore.Open(b.Context(), filepath.Join(b.TempDir(), "sotto.db"), key)
			if err != nil {
				b.Fatal(err)
			}
			return st
		})
	})
}

func benchClientCPU(b *testing.B, url string, newStore func() client.Store) {
	{
		ctx := b.Context()
		mk := func() (*client.Client, *countingStore) {
			st := &countingStore{Store: newStore()}
			c, err := client.Create(ctx, client.Options{Server: url, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return c, st
		}
		alice, aliceStore := mk()
		bob, bobStore := mk()
		// receive runs c until n messages have arrived.
		receive := func(c *client.Client, n int) {
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(runCtx) }()
			defer func() { stop(); <-done }()
			for got := 0; got < n; {
				select {
				case e := <-c.Events():
					if _, ok := e.(client.MessageEvent); ok {
						got++
					}
				case <-time.After(20 * time.Second):
					b.Fatalf("%d of %d messages arrived", got, n)
				}
			}
		}
		// Warm up: a message and its reply start the session and
		// acknowledge it, as in a conversation (until a reply arrives,
		// every message carries the PreKey header).
		if _, err := alice.SendText(ctx, bob.Account(), "warm-up"); err != nil {
			b.Fatal(err)
		}
		receive(bob, 1)
		if _, err := bob.SendText(ctx, alice.Account(), "warm-up reply"); err != nil {
			b.Fatal(err)
		}
		receive(alice, 1)

		b.ResetTimer()
		t0 := cpuTime(b)
		s0 := aliceStore.calls()
		for range b.N {
			if _, err := alice.SendText(ctx, bob.Account(), "a message of ordinary length, about sixty bytes"); err != nil {
				b.Fatal(err)
			}
		}
		t1 := cpuTime(b)
		s1 := aliceStore.calls()
		r0 := bobStore.calls()
		receive(bob, b.N)
		r1 := bobStore.calls()
		t2 := cpuTime(b)
		b.StopTimer()
		b.ReportMetric(float64((t1-t0).Microseconds())/float64(b.N), "send_cpu_us")
		b.ReportMetric(float64((t2-t1).Microseconds())/float64(b.N), "recv_cpu_us")
		b.ReportMetric(float64(s1.applies-s0.applies)/float64(b.N), "send_commits")
		b.ReportMetric(float64(s1.gets+s1.scans-s0.gets-s0.scans)/float64(b.N), "send_reads")
		b.ReportMetric(float64(r1.applies-r0.applies)/float64(b.N), "recv_commits")
		b.ReportMetric(float64(r1.gets+r1.scans-r0.gets-r0.scans)/float64(b.N), "recv_reads")
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingStore counts a Store's calls, so that a benchmark reports the
// store work per message next to the CPU.
type countingStore struct {
	client.Store
	gets, scans, applies atomic.Int64
}

type storeCalls struct{ gets, scans, applies int64 }

func (s *countingStore) calls() storeCalls {
	return storeCalls{s.gets.Load(), s.scans.Load(), s.applies.Load()}
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Scan(ctx context.Context, prefix string, fn func(string, []byte) error) error {
	s.scans.Add(1)
	return s.Store.Scan(ctx, prefix, fn)
}

func (s *countingStore) Apply(ctx context.Context, writes []client.Write) error {
	s.applies.Add(1)
	return s.Store.Apply(ctx, writes)
}
