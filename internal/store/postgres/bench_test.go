package postgres

import (
	"testing"

	"github.com/sotto-chat/sotto/internal/store/storetest"
)

// The benchmarks measure whatever server TEST_POSTGRES_URL names; the one
// scripts/test starts runs with fsync off, so use a server with fsync on
// (the default) for numbers that mean anything.
func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), freshSchema(b), Options{Limits: storetest.BenchLimits()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkAppendParallel(b *testing.B) { storetest.BenchAppendParallel(b, openBench(b)) }
func BenchmarkAppendSerial(b *testing.B)   { storetest.BenchAppendSerial(b, openBench(b)) }
func BenchmarkAppendAckCycle(b *testing.B) { storetest.BenchAppendAckCycle(b, openBench(b)) }
