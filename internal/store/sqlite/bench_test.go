package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/sotto-chat/sotto/internal/store/storetest"
)

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), Options{Limits: storetest.BenchLimits()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkAppendParallel(b *testing.B) { storetest.BenchAppendParallel(b, openBench(b)) }
func BenchmarkAppendSerial(b *testing.B)   { storetest.BenchAppendSerial(b, openBench(b)) }
func BenchmarkAppendAckCycle(b *testing.B) { storetest.BenchAppendAckCycle(b, openBench(b)) }
