package sqlite

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

// benchParallelism multiplies GOMAXPROCS into the number of goroutines a
// parallel benchmark runs: a server appends for many connections at once,
// and group commit only pays off with company.
const benchParallelism = 32

// benchEnvelopeSize is a typical sealed 1:1 text message.
const benchEnvelopeSize = 1024

// benchAccounts is how many recipients the parallel benchmarks spread
// their envelopes over.
const benchAccounts = 256

func openBench(b *testing.B) (*Store, []store.AccountID) {
	b.Helper()
	l := store.DefaultLimits()
	l.MaxMailbox = 1 << 40 // b.N envelopes may land in one mailbox
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), Options{Limits: l})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ids := make([]store.AccountID, benchAccounts)
	for i := range ids {
		ids[i] = store.AccountID{0xbe, byte(i >> 8), byte(i)}
		err := s.CreateAccount(b.Context(), store.Account{ID: ids[i], IdentityKey: make([]byte, 33)},
			store.Device{ID: 1, AuthKey: make([]byte, 33)})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s, ids
}

// BenchmarkAppendParallel appends 1 KiB envelopes, one per call, from
// many goroutines: the throughput of group commit.
func BenchmarkAppendParallel(b *testing.B) {
	s, ids := openBench(b)
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

// BenchmarkAppendSerial appends 1 KiB envelopes from one goroutine: one
// commit, one fsync, per envelope.
func BenchmarkAppendSerial(b *testing.B) {
	s, ids := openBench(b)
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

// BenchmarkAppendAckCycle is store-and-forward in steady state: many
// goroutines each append a 1 KiB envelope, read it back and ack it.
func BenchmarkAppendAckCycle(b *testing.B) {
	s, ids := openBench(b)
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
