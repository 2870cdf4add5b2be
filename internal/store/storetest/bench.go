package storetest

import (
	"sync/atomic"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

// Benchmarks every backend runs the same way: BenchmarkAppendParallel and
// BenchmarkAppendAckCycle in each backend's tests call these.

const (
	// benchParallelism multiplies GOMAXPROCS into the goroutines a
	// parallel benchmark runs (64 on 2 cores): a server appends for many
	// connections at once, and group commit only pays off with company.
	benchParallelism = 32
	// benchEnvelopeSize is a typical sealed 1:1 text message.
	benchEnvelopeSize = 1024
	// benchAccounts is how many recipients the benchmarks spread their
	// envelopes over.
	benchAccounts = 256
)

// BenchLimits are the limits to open a benchmark's store with: b.N
// envelopes may land in one mailbox.
func BenchLimits() store.Limits {
	l := store.DefaultLimits()
	l.MaxMailbox = 1 << 30
	return l
}

func benchAccountsIn(b *testing.B, s store.Store) []store.AccountID {
	b.Helper()
	ids := make([]store.AccountID, benchAccounts)
	for i := range ids {
		ids[i] = store.AccountID{0xbe, byte(i >> 8), byte(i)}
		err := s.CreateAccount(b.Context(), store.Account{ID: ids[i], IdentityKey: make([]byte, 33)},
			store.Device{ID: 1, AuthKey: make([]byte, 33)})
		if err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// BenchAppendParallel appends 1 KiB envelopes, one per call, from many
// goroutines (each writing to its own recipient), and reports envelopes/s.
func BenchAppendParallel(b *testing.B, s store.Store) {
	ids := benchAccountsIn(b, s)
	content := make([]byte, benchEnvelopeSize)
	var next atomic.Uint32
	b.SetParallelism(benchParallelism)
	b.SetBytes(benchEnvelopeSize)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[int(next.Add(1))%len(ids)]
		for pb.Next() {
			e := &store.Envelope{Account: id, Device: 1, Content: content, Expires: 30}
			if err := s.Append(b.Context(), []*store.Envelope{e}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchAppendSerial appends 1 KiB envelopes from one goroutine: one
// commit per envelope, and reports envelopes/s.
func BenchAppendSerial(b *testing.B, s store.Store) {
	ids := benchAccountsIn(b, s)
	content := make([]byte, benchEnvelopeSize)
	b.SetBytes(benchEnvelopeSize)
	for b.Loop() {
		e := &store.Envelope{Account: ids[0], Device: 1, Content: content, Expires: 30}
		if err := s.Append(b.Context(), []*store.Envelope{e}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchAppendAckCycle is store-and-forward in steady state: many
// goroutines each append a 1 KiB envelope, read it back and ack it. It
// reports cycles/s.
func BenchAppendAckCycle(b *testing.B, s store.Store) {
	ids := benchAccountsIn(b, s)
	content := make([]byte, benchEnvelopeSize)
	var next atomic.Uint32
	b.SetParallelism(benchParallelism)
	b.SetBytes(benchEnvelopeSize)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[int(next.Add(1))%len(ids)]
		for pb.Next() {
			e := &store.Envelope{Account: id, Device: 1, Content: content, Expires: 30}
			if err := s.Append(b.Context(), []*store.Envelope{e}); err != nil {
				b.Error(err)
				return
			}
			envs, err := s.Read(b.Context(), id, 1, e.ID-1, 1)
			if err != nil || len(envs) != 1 {
				b.Errorf("Read = %d envelopes, %v", len(envs), err)
				return
			}
			if err := s.Ack(b.Context(), id, 1, []store.EnvelopeID{e.ID}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}
