package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/sotto-chat/sotto/internal/store/storetest"
)

func openBench(b *testing.B) *Store {
	b.Helper()
	return openBenchWith(b, "")
}

func openBenchQueued(b *testing.B) *Store {
	b.Helper()
	return openBenchWith(b, filepath.Join(b.TempDir(), "mailboxes"))
}

func openBenchWith(b *testing.B, mailboxDir string) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"),
		Options{Limits: storetest.BenchLimits(), MailboxDir: mailboxDir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkAppendParallel(b *testing.B) { storetest.BenchAppendParallel(b, openBench(b)) }
func BenchmarkAppendSerial(b *testing.B)   { storetest.BenchAppendSerial(b, openBench(b)) }
func BenchmarkAppendAckCycle(b *testing.B) { storetest.BenchAppendAckCycle(b, openBench(b)) }

func BenchmarkQueueAppendParallel(b *testing.B) { storetest.BenchAppendParallel(b, openBenchQueued(b)) }
func BenchmarkQueueAppendSerial(b *testing.B)   { storetest.BenchAppendSerial(b, openBenchQueued(b)) }
func BenchmarkQueueAppendAckCycle(b *testing.B) { storetest.BenchAppendAckCycle(b, openBenchQueued(b)) }
